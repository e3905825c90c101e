#!/usr/bin/env python
"""Unified text+image benchmark for mmdiff on the embedded digits: text-to-image accuracy (judged by a classifier trained on real
digits, never by the generator), captioning accuracy on the held-out split, diversity and copy rate, after the demo's default budget;
then how text-to-image accuracy moves with sampling steps and guidance scale, and block-wise generation (bands of image rows, one
after the other) against MaskGIT sampling at equal NFE.

All measurements run in one process on one machine, so the rows compare; absolute times depend on the machine and its load.

    python benchmarks/bench_images.py --quick              # ~1 min smoke test: a tiny, untrained-ish model
    python benchmarks/bench_images.py                      # trains like `mmdiff demo` (about 10 minutes on a 2-core CPU), then sweeps
    python benchmarks/bench_images.py --pipeline demo_out  # sweep a pipeline that `mmdiff demo --out demo_out` saved
"""
from __future__ import annotations
import argparse, json, tempfile, time
from pathlib import Path

import numpy as np

from common import machine_info, command_line, apply_profile
from mmdiff.core import seed_everything, get_device, atomic_write_text
from mmdiff.data import digits
from mmdiff.evaluate import train_digit_classifier
from mmdiff.pipeline import MMDiff
from mmdiff.recipes import DigitsRecipe, train_digits, evaluate_digits, sweep, sample_grid

HERE = Path(__file__).resolve().parent
FULL = dict(minutes=9.0, d_model=128, n_layer=4, batch_size=32, tok_steps=800, n_per_digit=20, steps_grid='2,4,8,16', cfg_grid='0,0.5,1,2,3',
            blocks_grid='1,2,4')
QUICK = dict(minutes=0.6, d_model=32, n_layer=1, batch_size=16, tok_steps=50, n_per_digit=2, steps_grid='4,8', cfg_grid='0,1',
             blocks_grid='1,2')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Outputs: <out-dir>/images_bench.md, .json, and the plots images_bench_*.png (images_bench_quick* with --quick).")
    p.add_argument('--quick', action='store_true', help='tiny model, seconds of training: a smoke test of the script')
    p.add_argument('--replot', action='store_true', help='only redraw the plots from the existing <out-dir>/images_bench.json')
    p.add_argument('--pipeline', default=None, help='evaluate this saved pipeline instead of training one')
    p.add_argument('--minutes', type=float, default=None, help='the demo budget, all included (default 9)')
    for k in ('d_model', 'n_layer', 'batch_size', 'tok_steps', 'n_per_digit'):
        p.add_argument('--' + k.replace('_', '-'), type=int, default=None, help=f"default {FULL[k]} / quick {QUICK[k]}")
    for k in ('steps_grid', 'cfg_grid', 'blocks_grid'):
        p.add_argument('--' + k.replace('_', '-'), default=None, help=f"comma-separated; default {FULL[k]} / quick {QUICK[k]}")
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--device', default=None, help='cpu, cuda, ... (default: cuda if available)')
    p.add_argument('--progress', action='store_true')
    p.add_argument('--out-dir', default=str(HERE / 'results'))
    a = p.parse_args(argv)
    return apply_profile(a, QUICK if a.quick else FULL)


def plots(rows: list[dict], out: Path, prefix: str) -> list[str]:
    "Accuracy against guidance scale (one line per step count, MaskGIT) and against NFE (MaskGIT vs block-wise, best guidance)."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    files = []
    mg = [r for r in rows if r['n_blocks'] == 1]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for s in sorted({r['steps'] for r in mg}):
        rs = sorted((r for r in mg if r['steps'] == s), key=lambda r: r['cfg_scale'])
        ax.plot([r['cfg_scale'] for r in rs], [100 * r['t2i_acc'] for r in rs], 'o-', label=f'{s} steps')
    ax.set(xlabel='guidance scale w  (logits u + (w+1)(c-u))', ylabel='text-to-image accuracy (%)', title='digits: accuracy vs steps and guidance')
    ax.grid(alpha=.3); ax.legend(fontsize=8); fig.tight_layout()
    f = out / f'{prefix}_steps_cfg.png'; fig.savefig(f, dpi=120); plt.close(fig); files.append(f.name)
    fig, axs = plt.subplots(1, 2, figsize=(9, 3.2))
    for m, colour in zip(sorted({r['n_blocks'] for r in rows}), ('C0', 'C1', 'C2', 'C3')):
        for w, ls in ((0.0, '-'), (1.0, '--')):
            rs = sorted((r for r in rows if r['n_blocks'] == m and r['cfg_scale'] == w), key=lambda r: r['steps'])
            if not rs: continue
            lab = f"{'MaskGIT' if m == 1 else f'{m} row bands'}, w={w:g}"
            axs[0].plot([r['steps'] for r in rs], [100 * r['t2i_acc'] for r in rs], ls, marker='o', color=colour, label=lab)
            axs[1].plot([r['steps'] for r in rs], [r['diversity_ratio'] for r in rs], ls, marker='o', color=colour, label=lab)
    for ax, yl in zip(axs, ('text-to-image accuracy (%)', 'diversity ratio (1 = real digits)')):
        ax.set_xscale('log', base=2); ax.set(xlabel='NFE (forward passes per image)', ylabel=yl); ax.grid(alpha=.3)
    axs[0].legend(fontsize=7); fig.suptitle('block-wise (bands of rows) vs MaskGIT at equal NFE, guidance w = 0 and 1', fontsize=9)
    fig.tight_layout(); f = out / f'{prefix}_blocks.png'; fig.savefig(f, dpi=120); plt.close(fig); files.append(f.name)
    return files


def markdown(res: dict) -> str:
    a, mi, m = res['args'], res['machine'], res['main']
    L = [f"# mmdiff images benchmark (digits){' (QUICK smoke test: tiny model, not a result)' if a['quick'] else ''}", "",
         f"Command: `{res['command']}`", "",
         f"Machine: torch {mi['torch']} · device `{mi['device']}`{' (' + mi['gpu'] + ')' if 'gpu' in mi else ''} · CPU {mi['cpu']} "
         f"({mi.get('cpu_count', '?')} logical cores, load avg {mi.get('load_avg_1m_at_start', float('nan')):.2f} at start) · "
         f"torch threads {mi['torch_threads']} · {mi['date']} · total {res['total_s']:.0f} s", ""]
    if res.get('train'):
        t = res['train']
        L += [f"Training (`train_digits`, the `mmdiff demo` recipe): {t['params'] / 1e6:.2f} M parameters, {t['steps']} steps of {a['batch_size']} sequences "
              f"in {t['wall_s']:.0f} s (tokenizer included), budget {a['minutes']} min all included.", ""]
    else: L += [f"Pipeline: `{a['pipeline']}` (trained elsewhere).", ""]
    L += ["## Main numbers (16 MaskGIT steps, the pipeline's default guidance)", "",
          "| metric | value | target |", "|---|---|---|",
          f"| text-to-image accuracy ({10 * a['n_per_digit']} prompts, held-out classifier) | {m['t2i_acc']:.1%} | ≥ 95 % |",
          f"| captioning accuracy (297 held-out digits) | {m['caption_acc']:.1%} | ≥ 95 % |",
          f"| classifier on real held-out digits | {m['classifier_acc_real']:.1%} | (the judge) |",
          f"| diversity ratio (1 = as varied as real digits) | {m['diversity_ratio']:.2f} | not ≪ 1 |",
          f"| copy rate (RMS distance to the nearest train image < 0.02) | {m['copy_rate']:.1%} | ≈ 0 |",
          f"| ms per image / per caption | {m['ms_per_image']:.1f} / {m['ms_per_caption']:.1f} | |", "",
          "## Text-to-image accuracy by steps, guidance and blocks", "",
          "NFE = steps (each step is one forward pass; guidance runs the conditional and unconditional rows in one batched pass of twice the rows). "
          "`blocks` > 1: the 16 codes are generated as that many bands of image rows, one after the other, steps/blocks MaskGIT steps each "
          "(later bands stay [MASK]); blocks = 1 is MaskGIT.", "",
          "| steps (NFE) | guidance | blocks | accuracy | diversity | copy rate |", "|---|---|---|---|---|---|"]
    for r in res['sweep']:
        L.append(f"| {r['steps']} | {r['cfg_scale']:g} | {r['n_blocks']} | {r['t2i_acc']:.1%} | {r['diversity_ratio']:.2f} | {r['copy_rate']:.1%} |")
    L += ["", "Plots: " + ', '.join(f'`{f}`' for f in res['plots']), ""]
    return '\n'.join(L) + '\n'


def main(argv=None):
    a = parse_args(argv)
    if a.replot:
        out = Path(a.out_dir); res = json.loads((out / 'images_bench.json').read_text())
        return plots(res['sweep'], out, 'images_bench')
    command = command_line(argv)
    T0, dev = time.perf_counter(), get_device(a.device)
    mi = machine_info(dev)
    print(f"mmdiff images benchmark{' (quick)' if a.quick else ''}: torch {mi['torch']}, device {dev}, {mi['torch_threads']} threads", flush=True)
    seed_everything(a.seed)
    train = None
    if a.pipeline: pipe = MMDiff.from_pretrained(a.pipeline, device=dev)
    else:
        from mmdiff.cli import OVERHEAD_S
        recipe = DigitsRecipe(d_model=a.d_model, n_layer=a.n_layer, n_head=max(1, a.d_model // 32), batch_size=a.batch_size,
                              tok_steps=a.tok_steps, seed=a.seed)
        with tempfile.TemporaryDirectory(prefix='mmdiff_ibench_') as d:
            t0 = time.perf_counter()
            pipe = train_digits(d, recipe, budget_s=max(10.0, a.minutes * 60 - OVERHEAD_S), device=dev, progress=a.progress)
            train = dict(steps=len(pipe.history), wall_s=time.perf_counter() - t0, params=pipe.model.num_params())
        print(f"  trained {train['steps']} steps in {train['wall_s']:.0f} s", flush=True)
    clf = train_digit_classifier(*digits('train'))
    r = evaluate_digits(pipe, clf, n_per_digit=a.n_per_digit, steps=16, seed=a.seed)
    main_ = {k: r[k] for k in ('t2i_acc', 'caption_acc', 'classifier_acc_real', 'diversity_ratio', 'copy_rate', 'ms_per_image', 'ms_per_caption', 'cfg_scale')}
    print(f"  t2i {main_['t2i_acc']:.1%}, captioning {main_['caption_acc']:.1%}, diversity {main_['diversity_ratio']:.2f}", flush=True)
    out = Path(a.out_dir); out.mkdir(parents=True, exist_ok=True)
    name = 'images_bench_quick' if a.quick else 'images_bench'          # a smoke run never overwrites the full result
    sample_grid(r['images'], r['labels'], out / f'{name}_samples.png', per_row=10, title='text-to-image, 16 steps (row = prompted digit)')
    grid = dict(steps=[int(s) for s in a.steps_grid.split(',')], cfg_scales=[float(c) for c in a.cfg_grid.split(',')],
                n_blocks=[int(m) for m in a.blocks_grid.split(',')])
    rows = sweep(pipe, clf, n_per_digit=a.n_per_digit, seed=a.seed, progress=a.progress, **grid)
    rows = [{k: v for k, v in row.items() if not isinstance(v, np.ndarray)} for row in rows]
    for row in rows: print(f"  steps {row['steps']:2d} cfg {row['cfg_scale']:g} blocks {row['n_blocks']}: {row['t2i_acc']:.1%}", flush=True)
    res = dict(command=command, machine=mi, args=vars(a), train=train, main=main_, sweep=rows)
    res['plots'] = [f'{name}_samples.png'] + plots(rows, out, name)
    res['total_s'] = time.perf_counter() - T0
    md = markdown(res)
    atomic_write_text(out / f'{name}.md', md)
    atomic_write_text(out / f'{name}.json', json.dumps(res, indent=2, default=str))
    print('\n' + md + f"\nwritten {out / (name + '.md')} and {out / (name + '.json')}", flush=True)
    return res


if __name__ == '__main__': main()
