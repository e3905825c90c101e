#!/usr/bin/env python
"""Captioning ablations on the digits (issue #3, "captioning >= 95 % on the held-out digits"): one training run per call.

The run is `mmdiff.recipes.train_digits` at a fixed number of steps, with one or more departures from the demo's recipe
(`DigitsRecipe` fields, except --freeze):

    --dropout P      dropout P in the denoiser (attention output and MLP; `DigitsRecipe.dropout`)
    --freeze         image-code input embeddings stay at their codebook start (`init_code_embeddings`; gradient zeroed)
    --naug N         captioning items also show N `mmdiff.data.random_affine` warps of every training digit
                     (rotation +-12 deg, scale +-10 %, shift +-0.5 px, bilinear), tokenized by the same VQ-VAE;
                     text-to-image items show the real digits only (`DigitsRecipe.caption_aug`)
    --t2i S          share of text-to-image items (the rest are captioning items)
    --mmu-weight W   loss weight of captioning items
    --reader-hidden H  the pixel reader's conv width (`DigitsRecipe.reader_hidden`; runs logged before it existed used 64)
    --no-reader      captioning reads the image codes only, not also the pixels (`DigitsRecipe.reader=False`, the
                     recipe of every run logged before the pixel reader existed)

It prints one JSON line (held-out captioning on the 297 test digits, captioning of the first 300 training digits,
optionally text-to-image accuracy) and appends it to results/captioning_ablations.jsonl; `--table` turns that file
into results/captioning_ablations.md.

    python benchmarks/captioning_ablations.py --seed 0                        # the demo's recipe, ~7 min on one CPU thread
    python benchmarks/captioning_ablations.py --no-reader --seed 0            # without the pixel reader
    python benchmarks/captioning_ablations.py --table
"""
from __future__ import annotations
import argparse, tempfile, time
from collections import defaultdict
from pathlib import Path

import torch

from common import jsonl_run_or_table
from mmdiff.data import digits
from mmdiff.recipes import DigitsRecipe, train_digits, evaluate_t2i
from mmdiff.evaluate import caption_accuracy, train_digit_classifier

HERE = Path(__file__).resolve().parent
KNOBS = ('dropout', 'freeze', 'reader', 'reader_hidden', 'naug', 't2i', 'mmu_weight', 'steps')
DEFAULTS = dict(reader=False, reader_hidden=64)                         # knobs added later: what the runs logged before them used


def run(a) -> dict:
    "`train_digits` at `a.steps` steps with the requested departures from the demo's recipe; captioning (and t2i) accuracy."
    import mmdiff.run as P                                     # train_digits runs mmdiff.run.train_images
    recipe = DigitsRecipe(steps=a.steps, seed=a.seed, t2i_weight=a.t2i, mmu_weight=a.mmu_weight, caption_aug=a.naug, dropout=a.dropout,
                          reader=a.reader, reader_hidden=a.reader_hidden)
    init = P.init_code_embeddings
    def init_frozen(model, vocab, tok, **kw):                  # --freeze: the codebook start, then no gradient on those rows
        e = init(model, vocab, tok, **kw); lo, hi = vocab.image_offset, vocab.image_offset + vocab.n_image_codes
        model.tok_emb.weight.register_hook(lambda g: torch.cat([g[:lo], torch.zeros_like(g[lo:hi]), g[hi:]]))
        return e
    if a.freeze: P.init_code_embeddings = init_frozen
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix='mmdiff_capabl_') as out:
            pipe = train_digits(out, recipe, progress=a.progress, log=lambda *_: None)
    finally: P.init_code_embeddings = init
    train_s = time.perf_counter() - t0
    (tr_img, tr_lab), (te_img, te_lab) = digits('train'), digits('test')
    res = dict({k: getattr(a, k) for k in KNOBS}, seed=a.seed, threads=torch.get_num_threads(),
               held_out=caption_accuracy(pipe.caption(te_img.numpy()), te_lab),
               train_300=caption_accuracy(pipe.caption(tr_img[:300].numpy()), tr_lab[:300]), train_s=train_s)
    if a.t2i_eval: res['t2i_acc'] = evaluate_t2i(pipe, train_digit_classifier(tr_img, tr_lab), 10, 16, 1.0, a.seed)['t2i_acc']
    return res


def table(rows: list[dict]) -> str:
    groups = defaultdict(list)
    for r in rows: groups[tuple(r.get(k, DEFAULTS.get(k)) for k in KNOBS)].append(r)
    out = ["# mmdiff captioning ablations", "", "`python benchmarks/captioning_ablations.py ...`, one line of "
           "`captioning_ablations.jsonl` per run; held-out = 297 test digits, train = first 300 training digits.", "",
           "| " + " | ".join(KNOBS) + " | seeds | held-out captioning per seed | mean | train captioning per seed | text-to-image per seed |",
           "|" + "---|" * (len(KNOBS) + 5)]
    def order(kv):                                                       # by steps, the demo's recipe first in each
        k = dict(zip(KNOBS, kv[0]))
        return (k['steps'], str(k['reader']), k['naug'] > 0, k['freeze'], k['dropout'], -k['t2i'], k['mmu_weight'])
    for key, rs in sorted(groups.items(), key=order):
        rs = sorted(rs, key=lambda r: r['seed'])
        held = [r['held_out'] for r in rs]
        out.append("| " + " | ".join(str(v) for v in key) + f" | {','.join(str(r['seed']) for r in rs)} | "
                   + ", ".join(f"{100 * h:.1f}" for h in held) + f" | {100 * sum(held) / len(held):.1f} % | "
                   + ", ".join(f"{100 * r['train_300']:.1f}" for r in rs) + " | "
                   + ", ".join(f"{100 * r['t2i_acc']:.0f}" if 't2i_acc' in r else '—' for r in rs) + " |")
    return "\n".join(out) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--seed', type=int, default=0); p.add_argument('--steps', type=int, default=3000)
    p.add_argument('--dropout', type=float, default=0.0); p.add_argument('--freeze', action='store_true')
    p.add_argument('--no-reader', dest='reader', action='store_false', help='captioning reads the codes only (see above)')
    p.add_argument('--reader-hidden', type=int, default=128, help="the pixel reader's conv width (DigitsRecipe.reader_hidden)")
    p.add_argument('--naug', type=int, default=DigitsRecipe().caption_aug); p.add_argument('--t2i', type=float, default=0.5)
    p.add_argument('--mmu-weight', type=float, default=2.0); p.add_argument('--threads', type=int, default=1)
    p.add_argument('--t2i-eval', action='store_true', help='also measure text-to-image accuracy (trains the judge classifier)')
    p.add_argument('--progress', action='store_true'); p.add_argument('--table', action='store_true')
    p.add_argument('--out-dir', default=str(HERE / 'results'))
    jsonl_run_or_table(p.parse_args(argv), 'captioning_ablations', run, table)

if __name__ == '__main__': main()
