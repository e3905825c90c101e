#!/usr/bin/env python
"""Text-to-image of trained shapes pipelines (`bench_shapes.py --run-dir DIR` keeps them in DIR/run) at other sampler
settings: all 96 attribute combinations x 2 templates, read from pixels by `mmdiff.data.shape_attributes`.

    python benchmarks/shapes_sweep.py --pipelines full=WORK/full/run block:8=WORK/block8/run \
        --out benchmarks/results/shapes_blocks_run3/sweep.md
"""
from __future__ import annotations
import argparse, json, sys
from pathlib import Path
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_shapes import eval_t2i, all_combos, prompt, ATTRS   # noqa: E402

SETTINGS = [(16, 1.0, 1.0, 0), (16, 1.0, 1.0, 1), (16, 1.0, 1.0, 2), (16, 0.7, 1.0, 0), (16, 0.3, 1.0, 0), (16, 1.0, 3.0, 0),
            (16, 1.0, 0.0, 0), (64, 1.0, 1.0, 0)]   # (steps, temperature, guidance, sampling seed)


def main(argv=None):
    from mmdiff.pipeline import MMDiff
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--pipelines', nargs='+', required=True, help='LABEL=DIR pairs')
    p.add_argument('--out', required=True, help='markdown table; a .jsonl of the rows beside it')
    p.add_argument('--threads', type=int, default=2)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    attrs = [c for c in all_combos() for _ in range(2)]
    prompts = [prompt(c, t) for c in all_combos() for t in range(2)]
    rows = []
    for spec in a.pipelines:
        label, _, d = spec.partition('=')
        pipe = MMDiff.from_pretrained(d, device='cpu')
        for steps, temp, cfg, seed in SETTINGS:
            r, _, _ = eval_t2i(pipe, prompts, attrs, steps, cfg, seed, temperature=temp)
            rows.append(dict(model=label, steps=steps, temperature=temp, cfg=cfg, seed=seed, **{k: r[k] for k in (*ATTRS, 'all')},
                             ms_per_image=r['ms_per_image']))
            print(json.dumps(rows[-1]), flush=True)
    out = Path(a.out)
    out.with_suffix('.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
    lines = ['# Shapes text-to-image at other sampler settings', '', 'Command: `python benchmarks/shapes_sweep.py '
             + ' '.join(sys.argv[1:]) + '`', '', '| model | steps | temperature | guidance | sampling seed | '
             + ' | '.join(ATTRS) + ' | all four |', '|---' * (6 + len(ATTRS)) + '|']
    for r in rows:
        lines.append(f"| {r['model']} | {r['steps']} | {r['temperature']} | {r['cfg']} | {r['seed']} | "
                     + ' | '.join(f"{100 * r[k]:.1f} %" for k in (*ATTRS, 'all')) + ' |')
    out.write_text('\n'.join(lines) + '\n')
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
