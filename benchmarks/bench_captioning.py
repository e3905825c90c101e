#!/usr/bin/env python
"""Captioning benchmark for mmdiff (issue #3: "captioning >= 95 % on the held-out digits"): how far can captioning go
through the demo's image tokenizer, and what does starting the image-code embeddings from the codebook buy?

[1] Ceilings: the demo's VQ-VAE is trained on the digits' train split, then standard classifiers are fitted on the same
    1,500 training digits and scored on the 297 held-out ones -- on raw pixels, on the 16 codes (one-hot) and on the
    codebook vectors the decoder sees. No denoiser is involved: these numbers say what the tokens make easy.
[2] Ablation: `train_digits` at a fixed number of steps with the image-code embeddings started at random
    (`code_emb_scale=0`) and from the codebook (`code_emb_scale=1`, the default); held-out and training-set captioning
    accuracy and text-to-image accuracy of each.

    python benchmarks/bench_captioning.py --quick          # < 1 min smoke test
    python benchmarks/bench_captioning.py                  # [1] ~1 min, [2] 3 seeds x 2 arms, ~5 min each at 2 threads

Nothing is asserted; every number is written to results/captioning_bench.md and .json.
"""
from __future__ import annotations
import argparse, json, tempfile, time
from pathlib import Path

import numpy as np
import torch

from common import apply_profile, add_run_flags, start_run
from mmdiff.core import atomic_write_text
from mmdiff.data import digits, encode_images, as_chw
from mmdiff.imagetok import VQConfig, train_tokenizer, recon_metrics
from mmdiff.multimodal import codebook_vectors
from mmdiff.recipes import DigitsRecipe, train_digits, evaluate_t2i
from mmdiff.evaluate import train_digit_classifier, caption_accuracy

HERE = Path(__file__).resolve().parent
FULL = dict(tok_steps=800, steps=3000, scales='0,1', seeds='0,1,2', n_train_eval=300)
QUICK = dict(tok_steps=60, steps=20, scales='0,1', seeds='0', n_train_eval=30)
TYPES = dict(scales=str, seeds=str)


def ceilings(tok, tr_img, tr_lab, te_img, te_lab, clf) -> list[dict]:
    "Held-out accuracy of standard classifiers on pixels, one-hot codes and codebook vectors (sklearn, fixed seeds)."
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC
    K, cb = tok.n_codes, codebook_vectors(tok).cpu().numpy()                            # (K, D_c)
    c_tr, c_te = encode_images(tok, tr_img).cpu().numpy(), encode_images(tok, te_img).cpu().numpy()   # (N, T)
    feats = {'pixels (64 values)': (tr_img.flatten(1).float().numpy(), te_img.flatten(1).float().numpy()),
             'codes, one-hot (16 x 64)': (np.eye(K)[c_tr].reshape(len(c_tr), -1), np.eye(K)[c_te].reshape(len(c_te), -1)),
             'codebook vectors (16 x D_c)': (cb[c_tr].reshape(len(c_tr), -1), cb[c_te].reshape(len(c_te), -1))}
    models = {'logistic regression': lambda: LogisticRegression(max_iter=3000),
              'MLP (256 hidden)': lambda: MLPClassifier((256,), max_iter=500, random_state=0),
              'SVM (RBF, C=10)': lambda: SVC(C=10, gamma='scale'),
              'k-NN (k=3)': lambda: KNeighborsClassifier(3)}
    ytr, yte = tr_lab.numpy(), te_lab.numpy()
    rows = [dict(features=f, classifier=m, acc=float(mk().fit(a, ytr).score(b, yte))) for f, (a, b) in feats.items() for m, mk in models.items()]
    rows.append(dict(features='pixels (64 values)', classifier='the judge: small CNN + shift augmentation (mmdiff.evaluate)',
                     acc=float((clf.predict(te_img) == te_lab).float().mean())))
    return rows


def caption_acc(pipe, images, labels) -> float: return caption_accuracy(pipe.caption(images.numpy()), labels)


def markdown(res: dict) -> str:
    a, mi = res['args'], res['machine']
    pct = lambda x: f"{100 * x:.1f} %"
    L = [f"# mmdiff captioning benchmark{' (QUICK smoke test: not a result)' if a['quick'] else ''}", "",
         f"Command: `{res['command']}`", "",
         f"Machine: torch {mi['torch']} · device `{mi['device']}` · CPU {mi['cpu']} ({mi.get('cpu_count', '?')} logical cores, "
         f"load avg {mi.get('load_avg_1m_at_start', float('nan')):.2f} at start) · torch threads {mi['torch_threads']} · {mi['date']} · "
         f"total {res['total_s']:.0f} s", "",
         "Data: `mmdiff.data.digits` — train split 1,500 digits, held-out split the last 297 (never used for training, tokenizer included).", "",
         "## [1] What the tokens make easy: standard classifiers on the same split", "",
         f"Tokenizer: the demo's `VQConfig()` (4×4 codes, 64-code codebook), {a['tok_steps']} steps: held-out PSNR {res['tokenizer']['psnr']:.1f} dB, "
         f"codebook usage {res['tokenizer']['usage']:.0f} %.", "",
         "| features | classifier | held-out accuracy |", "|---|---|---|"]
    L += [f"| {r['features']} | {r['classifier']} | {pct(r['acc'])} |" for r in res['ceilings']]
    L += ["", "## [2] Image-code embeddings: random start vs. started from the codebook", "",
          f"`train_digits(DigitsRecipe(steps={a['steps']}, code_emb_scale=s, reader=False, caption_aug=0))` (captioning from the codes only), everything else the demo's defaults; captioning by "
          "`MMDiff.caption` (temperature 0); text-to-image: 10 prompts per digit, 16 steps, CFG 1, judged by the classifier above.", "",
          "| code_emb_scale | seed | held-out captioning | training-set captioning | text-to-image | diversity | train s |", "|---|---|---|---|---|---|---|"]
    L += [f"| {r['code_emb_scale']:g} | {r['seed']} | {pct(r['caption_heldout'])} | {pct(r['caption_train'])} (n={r['n_train_eval']}) | {pct(r['t2i_acc'])} | "
          f"{r['diversity_ratio']:.2f} | {r['train_s']:.0f} |" for r in res['ablation']]
    L += ["", "Mean over seeds (the seed sets the tokenizer, the model's initialisation and the data order):", "",
          "| code_emb_scale | held-out captioning, mean ± std | text-to-image, mean |", "|---|---|---|"]
    for s in dict.fromkeys(r['code_emb_scale'] for r in res['ablation']):
        c = [r['caption_heldout'] for r in res['ablation'] if r['code_emb_scale'] == s]
        t = [r['t2i_acc'] for r in res['ablation'] if r['code_emb_scale'] == s]
        L.append(f"| {s:g} | {100 * np.mean(c):.1f} ± {100 * np.std(c):.1f} % (n={len(c)}) | {100 * np.mean(t):.1f} % |")
    return '\n'.join(L) + '\n'


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--quick', action='store_true', help='a tiny tokenizer and 20 steps: a smoke test of the script')
    for k in FULL: p.add_argument('--' + k.replace('_', '-'), type=TYPES.get(k, int), default=None, help=f"default {FULL[k]} / quick {QUICK[k]}")
    add_run_flags(p, HERE / 'results')
    a = p.parse_args(argv); a = apply_profile(a, QUICK if a.quick else FULL)
    command, T0, dev, mi = start_run(a, argv, 'captioning benchmark')
    tr_img, tr_lab = digits('train'); te_img, te_lab = digits('test')
    clf = train_digit_classifier(tr_img, tr_lab)

    print(f"[1] tokenizer ({a.tok_steps} steps) and classifier ceilings", flush=True)
    tok, _ = train_tokenizer(as_chw(tr_img), VQConfig(), steps=a.tok_steps, seed=a.seed, progress=a.progress, device=dev)
    tk = recon_metrics(tok, as_chw(te_img).to(dev))
    rows = ceilings(tok, tr_img, tr_lab, te_img, te_lab, clf)
    for r in rows: print(f"  {r['features']:28s} {r['classifier']:60s} {100 * r['acc']:5.1f} %", flush=True)

    print(f"[2] ablation: {a.steps} steps per arm, code_emb_scale in {a.scales}, seeds {a.seeds}", flush=True)
    abl, sub = [], np.random.RandomState(a.seed).choice(len(tr_img), a.n_train_eval, replace=False)
    for seed, s in [(int(sd), float(x)) for sd in a.seeds.split(',') for x in a.scales.split(',')]:
        with tempfile.TemporaryDirectory(prefix='mmdiff_cap_') as out:
            t0 = time.perf_counter()
            recipe = DigitsRecipe(tok_steps=a.tok_steps, steps=a.steps, code_emb_scale=s, seed=seed, reader=False, caption_aug=0)   # codes only
            pipe = train_digits(out, recipe, device=dev, progress=a.progress, log=lambda *x: None)
            train_s = time.perf_counter() - t0
        r = dict(code_emb_scale=s, seed=seed, train_s=train_s, caption_heldout=caption_acc(pipe, te_img, te_lab),
                 caption_train=caption_acc(pipe, tr_img[sub], tr_lab[sub]), n_train_eval=a.n_train_eval,
                 **evaluate_t2i(pipe, clf, n_per_digit=10, steps=16, cfg_scale=1.0, seed=a.seed))
        abl.append(r)
        print(f"  seed {seed}, scale {s:g}: held-out captioning {100 * r['caption_heldout']:.1f} %, train {100 * r['caption_train']:.1f} %, "
              f"t2i {100 * r['t2i_acc']:.1f} % ({train_s:.0f} s)", flush=True)

    res = dict(command=command, machine=mi, args=vars(a), tokenizer=dict(psnr=tk['psnr'], usage=tk['usage']), ceilings=rows, ablation=abl,
               total_s=time.perf_counter() - T0)
    out = Path(a.out_dir); out.mkdir(parents=True, exist_ok=True)
    sfx = '_quick' if a.quick else ''
    md_f, json_f = out / f'captioning_bench{sfx}.md', out / f'captioning_bench{sfx}.json'
    md = markdown(res)
    atomic_write_text(md_f, md); atomic_write_text(json_f, json.dumps(res, indent=2, default=str))
    for f in (md_f, json_f): f.chmod(0o644)
    print('\n' + md + f"\nwritten {md_f} and {json_f}", flush=True)
    return res


if __name__ == '__main__': main()
