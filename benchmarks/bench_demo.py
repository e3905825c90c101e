#!/usr/bin/env python
"""The main job's numbers: run `mmdiff demo` (the digits recipe, trained through `mmdiff train`'s path) for several
seeds, one after the other, as a user types it, and tabulate text-to-image and held-out captioning accuracy.

    python benchmarks/bench_demo.py --seeds 0 1 2        # ~10 min per seed on a 2-core CPU; run it alone on the machine
    python benchmarks/bench_demo.py --seeds 0 1 --table  # the table again, from the seeds' saved JSON files

Each seed writes `results/demo_seed{N}.json` (the demo's metrics + the command, date, load, commit); the table of all
seeds run in this call goes to `results/demo_bench.md`; the first sample grid written during training is copied to
`results/demo_first_grid_seed{N}.png`. Nothing is asserted.
"""
from __future__ import annotations
import argparse, json, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def commit() -> str:
    try: return subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=HERE, capture_output=True, text=True).stdout.strip()
    except OSError: return '?'


def run_seed(seed: int, minutes: float | None, work: Path, dest: Path) -> dict:
    "One `mmdiff demo` as a subprocess; its demo_metrics.json with the run's facts added."
    out = work/f'demo_out{seed}'
    cmd = ['mmdiff', 'demo', '--out', str(out), '--no-progress', '--seed', str(seed)]
    if minutes: cmd += ['--minutes', str(minutes)]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode: raise SystemExit(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    res = json.loads((out/'demo_metrics.json').read_text())
    grids = sorted((out/'samples').glob('step-*.png'))                       # written during training
    if grids: shutil.copy(grids[0], dest/f'demo_first_grid_seed{seed}.png')
    replans = [l for l in p.stdout.splitlines() + p.stderr.splitlines() if 're-planned' in l]
    threads = [l for l in p.stderr.splitlines() if l.startswith('CPU: ')]
    res.update(command=' '.join(cmd[:3] + [f'demo_out{seed}'] + cmd[4:]), seed=seed, wall_s=time.perf_counter() - t0,
               load_avg_1m_at_start=load, date=time.strftime('%Y-%m-%d'), commit_of_library=commit(),
               path="mmdiff.recipes.train_digits -> mmdiff.run.train_images (mmdiff train's path)",
               replan=replans[-1].strip() if replans else None, threads=threads[-1].strip() if threads else None)
    return res


def table(rows: list[dict]) -> str:
    L = ['# `mmdiff demo` (digits, through `mmdiff train`\'s path)', '',
         f"Command per seed: `mmdiff demo --out demo_outN --no-progress --seed N`; library commit(s) "
         f"{', '.join(dict.fromkeys(r['commit_of_library'] for r in rows))}, "
         f"{', '.join(dict.fromkeys(r['date'] for r in rows))}; {os.cpu_count()} cores. Text-to-image: 100 prompts (10 per digit) judged by a classifier trained "
         "on the real train split; captioning: the 297 held-out digits.", '',
         '| seed | text-to-image | captioning | denoiser steps | torch threads | first grid at s | samples.png at s | wall s '
         '| load at start |',
         '|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        th = (r.get('threads') or 'CPU: ? ').split()[1]
        at = f"{r['samples_s']:.0f}" if 'samples_s' in r else '–'
        first = f"{r['first_grid_s']:.0f}" if 'first_grid_s' in r else '–'
        L.append(f"| {r['seed']} | {r['t2i_acc']:.1%} | {r['caption_acc']:.1%} | {r['train_steps']} | {th} | {first} | {at} | "
                 f"{r['wall_s']:.0f} | {r['load_avg_1m_at_start']:.2f} |")
    t2i, cap = [r['t2i_acc'] for r in rows], [r['caption_acc'] for r in rows]
    L += ['', f"Text-to-image {min(t2i):.1%}–{max(t2i):.1%} (mean {sum(t2i) / len(t2i):.1%}); captioning {min(cap):.1%}–{max(cap):.1%} "
          f"(mean {sum(cap) / len(cap):.1%}); targets: ≥ 95 % each."]
    return '\n'.join(L) + '\n'


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--minutes', type=float, default=None, help="the demo's --minutes (default: the demo's own)")
    p.add_argument('--out-dir', default=str(HERE/'results'))
    p.add_argument('--table', action='store_true', help="only rebuild demo_bench.md from the seeds' saved JSON files")
    a = p.parse_args()
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if a.table:
        rows = [json.loads((out/f'demo_seed{s}.json').read_text()) for s in a.seeds]
        (out/'demo_bench.md').write_text(table(rows))
        return print(table(rows))
    rows = []
    with tempfile.TemporaryDirectory(prefix='mmdiff_demo_bench_') as work:
        for s in a.seeds:
            r = run_seed(s, a.minutes, Path(work), out)
            (out/f'demo_seed{s}.json').write_text(json.dumps(r, indent=2) + '\n')
            rows.append(r)
            print(f"seed {s}: text-to-image {r['t2i_acc']:.1%}, captioning {r['caption_acc']:.1%}, {r['train_steps']} steps, "
                  f"{r['wall_s']:.0f} s", flush=True)
    (out/'demo_bench.md').write_text(table(rows))
    print(table(rows))


if __name__ == '__main__':
    main()
