#!/usr/bin/env python
"""Memory of `mmdiff train --images` against the number of images: does an image run's memory grow with its folder?

For each size in `--sizes`, an image-caption folder of N 28x28 grayscale PNGs is written (the embedded 8x8 digits,
upscaled and shifted by a seeded random offset so that the images differ; captions name the digit), then
`python -m mmdiff.train --images DIR --image-size 28` runs on it as a subprocess with a tiny model and a few steps, so
that checking, preparing, encoding and building the datasets dominate. Its memory is sampled from /proc every 0.05 s:

- *anonymous*: RssAnon, the memory the process allocated (arrays, tensors, Python objects) - what must not grow;
- *file-backed*: RssFile, pages of mapped files in memory (the prepared images and codes, the libraries), which the
  kernel drops under memory pressure and reads again from disk.

`--code DIR` runs the library found in DIR instead of the installed one (e.g. a `git worktree` of an older commit),
to compare against it in the same conditions. Results: one JSON line per run in `results/image_memory.jsonl`, the
table in `results/image_memory.md`.

    python benchmarks/bench_image_memory.py --sizes 15000 150000                 # ~10 min on 2 cores
    git worktree add /tmp/old 1fac2bb && python benchmarks/bench_image_memory.py --sizes 15000 150000 --code /tmp/old --label 1fac2bb
    python benchmarks/bench_image_memory.py --table
"""
from __future__ import annotations
import argparse, json, os, shutil, subprocess, sys, tempfile, threading, time
from pathlib import Path
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
RESULTS = HERE / 'results'
TRAIN_ARGS = ['--image-size', '28', '--image.tok-steps', '20', '--image.n-samples', '0', '--model.d-model', '32',
              '--model.n-layer', '1', '--model.n-head', '2', '--train.batch-size', '16', '--train.max-steps', '10',
              '--train.warmup-steps', '1', '--train.eval-every', '0', '--train.workers', '0', '--no-progress']


def write_folder(folder: Path, n: int, seed: int = 0) -> float:
    "N 28x28 grayscale digits (8x8 digits x3, placed at a random offset) + metadata.jsonl; seconds taken."
    from PIL import Image
    from mmdiff.data import digits
    t0 = time.perf_counter()
    imgs, labels = digits('train')
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    lines = []
    for i in range(n):
        k = int(rng.integers(len(imgs)))
        canvas = np.zeros((28, 28), np.uint8)
        y, x = rng.integers(0, 5, size=2)
        canvas[y:y + 24, x:x + 24] = np.kron(imgs[k].numpy(), np.ones((3, 3), np.uint8))
        Image.fromarray(canvas).save(folder / f'{i}.png')
        lines.append(json.dumps(dict(file_name=f'{i}.png', text=f'a handwritten digit {int(labels[k])}')) + '\n')
    (folder / 'metadata.jsonl').write_text(''.join(lines))
    return time.perf_counter() - t0


def _status(pid: int) -> dict:
    "RssAnon / RssFile / VmHWM of `pid` in bytes (empty when the process is gone)."
    try: text = Path(f'/proc/{pid}/status').read_text()
    except OSError: return {}
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(':')
        if k in ('RssAnon', 'RssFile', 'VmHWM'): out[k] = int(v.split()[0]) * 1024
    return out


def run_train(folder: Path, out: Path, code: str | None) -> dict:
    "Run the training command on `folder`; peaks of anonymous and file-backed memory, wall time, its summary."
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    if code: env['PYTHONPATH'] = str(Path(code).resolve())
    cmd = [sys.executable, '-m', 'mmdiff.train', '--images', str(folder), '--out', str(out), *TRAIN_ARGS]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    peaks = dict(RssAnon=0, RssFile=0, VmHWM=0)
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True)
    reader.start()
    while proc.poll() is None:
        for k, v in _status(proc.pid).items(): peaks[k] = max(peaks[k], v)
        time.sleep(0.05)
    stdout = proc.stdout.read()
    reader.join(timeout=10)
    if proc.returncode != 0: raise SystemExit(f"training failed (exit {proc.returncode}):\n{''.join(err)[-3000:]}")
    return dict(wall_s=time.perf_counter() - t0, peak_anon_bytes=peaks['RssAnon'], peak_file_bytes=peaks['RssFile'],
                peak_rss_bytes=peaks['VmHWM'], result=json.loads(stdout.strip().splitlines()[-1]), command=' '.join(cmd))


def table() -> str:
    rows = [json.loads(l) for l in (RESULTS / 'image_memory.jsonl').read_text().splitlines() if l.strip()]
    mb = lambda b: f"{b / 2**20:,.0f}"
    lines = ["# Memory of `mmdiff train --images` against the number of images", "",
             "28x28 grayscale PNGs, a tiny model, 10 steps (`benchmarks/bench_image_memory.py`). *Anonymous*: RssAnon, memory "
             "the process allocated; *file-backed*: RssFile, mapped file pages in memory (the prepared images and codes, the "
             "libraries; the kernel can drop and re-read them); *peak RSS*: VmHWM, both together. Peaks sampled every 0.05 s.", "",
             "| code | images | pixels on disk MB | peak anonymous MB | peak file-backed MB | peak RSS MB | wall s | date |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['n']:,} | {r['n'] * 784 / 2**20:,.0f} | {mb(r['peak_anon_bytes'])} | "
                     f"{mb(r['peak_file_bytes'])} | {mb(r['peak_rss_bytes'])} | {r['wall_s']:.0f} | {r['date']} |")
    return '\n'.join(lines) + '\n'


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--sizes', type=int, nargs='+', default=[15000, 150000], help='numbers of images')
    p.add_argument('--code', default=None, help='a folder holding the mmdiff package to run instead of the installed one')
    p.add_argument('--label', default='this commit', help='what the code column says')
    p.add_argument('--tmp', default=tempfile.gettempdir(), help='where the folders are written (deleted at the end)')
    p.add_argument('--table', action='store_true', help='only rewrite results/image_memory.md')
    a = p.parse_args(argv)
    if not a.table:
        RESULTS.mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(dir=a.tmp) as d:
            for n in a.sizes:
                folder = Path(d) / f'images_{n}'
                print(f"writing {n:,} images ...", flush=True)
                write_s = write_folder(folder, n)
                r = run_train(folder, Path(d) / f'run_{n}', a.code)
                r.update(n=n, label=a.label, write_s=write_s, date=time.strftime('%Y-%m-%d'))
                print(f"{n:,} images ({a.label}): peak anonymous {r['peak_anon_bytes'] / 2**20:,.0f} MB, file-backed "
                      f"{r['peak_file_bytes'] / 2**20:,.0f} MB, RSS {r['peak_rss_bytes'] / 2**20:,.0f} MB, {r['wall_s']:.0f} s",
                      flush=True)
                with open(RESULTS / 'image_memory.jsonl', 'a') as f: f.write(json.dumps(r) + '\n')
                shutil.rmtree(folder)
                shutil.rmtree(Path(d) / f'run_{n}')
    md = table()
    (RESULTS / 'image_memory.md').write_text(md)
    print(md)


if __name__ == '__main__':
    main()
