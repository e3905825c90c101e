#!/usr/bin/env python
"""What can read the held-out digits? A plain transformer classifier on different inputs (issue #3, captioning >= 95 %).

Captioning a digit is, in the end, a 10-way classification of the image read by the denoiser. This script trains the
same small transformer (4 pre-norm layers, width 128, 4 heads, mean-pooled, linear head; AdamW 1e-3, weight decay
0.05, cosine, batch 32) as a *classifier* on one input representation of the 1,500 training digits and reports its
accuracy on the 297 held-out ones. It separates "the tokens do not carry the class" from "the denoiser does not learn
to read them":

    codes    the image tokenizer's (VQ-VAE, demo settings, 800 steps) codebook vectors at the 4x4 code grid,
             standardised: what the denoiser's image-code embeddings start from
    codeid   the code ids through a learned embedding table (randomly initialised)
    latent   the tokenizer encoder's continuous output before quantization (4x4 x 16)
    patch    the pixels as 2x2 patches (ViT-style, linear patch embedding)
    conv     the pixels through a 2-layer conv stem (3x3, stride 2 at the end) -> 4x4 x 128
    conv3    the pixels through a 3-layer conv stem (the `captioning_ablations.py --reader` prototype, `mmdiff.model.PixelReader`);
             `--hidden` sets its width (64) and `--depth` its number of full-resolution 3x3 layers (2) before the stride-2 one

`--naug N` adds N augmented copies of every training digit (fixed, before training): `--aug affine` (default) warps them with
`mmdiff.data.random_affine` (bilinear, so also slightly blurred), `--aug shift` moves them by whole pixels (-1..1 on each axis,
zero-filled, no interpolation: the judge classifier's augmentation). `--tta N` also scores the held-out digits with their class
probabilities averaged over the digit and N random whole-pixel shifts of it (same network: a paired comparison).

    python benchmarks/captioning_readers.py --input conv3 --naug 5 --seed 0    # ~2 min on one thread
    python benchmarks/captioning_readers.py --table                            # results/captioning_readers.jsonl -> .md
"""
from __future__ import annotations
import argparse, math, time
from collections import defaultdict
from pathlib import Path

import torch, torch.nn as nn, torch.nn.functional as F
from einops import rearrange

from common import jsonl_run_or_table
from mmdiff.data import digits, random_affine, as_chw, encode_images
from mmdiff.imagetok import train_tokenizer, VQConfig
from mmdiff.multimodal import codebook_vectors

HERE = Path(__file__).resolve().parent
INPUTS = ('codes', 'codeid', 'latent', 'patch', 'conv', 'conv3')


class Reader(nn.Module):
    "Input stem -> 16 tokens (B, 16, d) -> transformer -> mean -> logits (B, 10)."
    def __init__(self, kind: str, d: int = 128, n_codes: int = 64, code_dim: int = 16, hidden: int = 64, depth: int = 2):
        super().__init__(); self.kind = kind
        full_res = lambda: [m for i in range(depth) for m in (nn.Conv2d(1 if i == 0 else hidden, hidden, 3, padding=1), nn.GELU())]
        self.stem = {'codes': lambda: nn.Linear(code_dim, d), 'latent': lambda: nn.Linear(code_dim, d),
                     'codeid': lambda: nn.Embedding(n_codes, d), 'patch': lambda: nn.Linear(4, d),
                     'conv': lambda: nn.Sequential(nn.Conv2d(1, 64, 3, padding=1), nn.GELU(), nn.Conv2d(64, d, 3, stride=2, padding=1)),
                     'conv3': lambda: nn.Sequential(*full_res(), nn.Conv2d(hidden, d, 3, stride=2, padding=1))}[kind]()
        self.pos = nn.Parameter(torch.randn(16, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, 4, 4 * d, 0.0, batch_first=True, norm_first=True)
        self.tf, self.head = nn.TransformerEncoder(layer, 4, enable_nested_tensor=False), nn.Linear(d, 10)
    def forward(self, x):
        "x: (B, 16, D_c) vectors, (B, 16) code ids, or (B, 8, 8) pixels in [0, 1] -> logits (B, 10)."
        if self.kind == 'patch': h = self.stem(rearrange(x, 'b (h p) (w q) -> b (h w) (p q)', p=2, q=2))
        elif self.kind.startswith('conv'): h = rearrange(self.stem(x[:, None]), 'b d h w -> b (h w) d')
        else: h = self.stem(x)
        return self.head(self.tf(h + self.pos).mean(1))


def featurizer(kind: str, train_images: torch.Tensor, seed: int):
    "uint8 images (N, 8, 8) -> the reader's input for `kind`."
    if kind in ('patch', 'conv', 'conv3'): return lambda X: X.float() / 255
    tok, _ = train_tokenizer(as_chw(train_images), VQConfig(), steps=800, seed=seed, progress=False)
    if kind == 'codeid': return lambda X: encode_images(tok, X)
    if kind == 'codes':
        cb = codebook_vectors(tok); cb = (cb - cb.mean(0)) / cb.std(0)
        return lambda X: cb[encode_images(tok, X)]
    enc = lambda X: rearrange(tok.encoder(as_chw(X).float() / 255 * 2 - 1), 'n d h w -> n (h w) d')
    with torch.no_grad(): z = enc(train_images).flatten(0, 1); mu, sd = z.mean(0), z.std(0)
    return lambda X: (enc(X) - mu) / sd


def pixel_shifts(images: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    "n copies of each uint8 image (N, H, W), each moved by a random whole-pixel shift in -1..1 per axis, zero-filled -> (N n, H, W)."
    g = torch.Generator().manual_seed(seed)
    x = images.repeat_interleave(n, 0); d = torch.randint(-1, 2, (len(x), 2), generator=g)
    out = torch.zeros_like(x); H, W = x.shape[1:]
    for (dy, dx) in d.unique(dim=0).tolist():
        i = ((d[:, 0] == dy) & (d[:, 1] == dx)).nonzero()[:, 0]
        out[i, max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = x[i, max(-dy, 0):H + min(-dy, 0), max(-dx, 0):W + min(-dx, 0)]
    return out


def run(a) -> dict:
    torch.manual_seed(a.seed)
    (tr, ytr), (te, yte) = digits('train'), digits('test')
    t0 = time.perf_counter()
    feat = featurizer(a.input, tr, a.seed)
    with torch.no_grad():
        aug = random_affine(tr, a.naug, seed=a.seed) if a.aug == 'affine' else pixel_shifts(tr, a.naug, seed=a.seed)
        X, y = torch.cat([tr, aug]), torch.cat([ytr, ytr.repeat_interleave(a.naug)])
        X, Xte = feat(X), feat(te)
    net = Reader(a.input, hidden=a.hidden, depth=a.depth); opt = torch.optim.AdamW(net.parameters(), a.lr, weight_decay=0.05)
    g = torch.Generator().manual_seed(a.seed)
    for it in range(a.steps):
        for pg in opt.param_groups: pg['lr'] = a.lr * min(1, (it + 1) / 100) * 0.5 * (1 + math.cos(math.pi * it / a.steps))
        i = torch.randint(len(X), (32,), generator=g)
        loss = F.cross_entropy(net(X[i]), y[i]); opt.zero_grad(); loss.backward(); opt.step()
    net.eval()
    with torch.no_grad():
        acc, acc_tta = (net(Xte).argmax(-1) == yte).float().mean().item(), None
    if a.tta:
        views = torch.cat([te[:, None], rearrange(pixel_shifts(te, a.tta, seed=a.seed + 1), '(n k) h w -> n k h w', k=a.tta)], 1)  # (N, 1+tta, 8, 8)
        with torch.no_grad(): p = rearrange(net(feat(rearrange(views, 'n k h w -> (n k) h w'))).softmax(-1), '(n k) c -> n k c', k=1 + a.tta).mean(1)
        acc_tta = (p.argmax(-1) == yte).float().mean().item()
    return dict(input=a.input, hidden=a.hidden, depth=a.depth, aug=a.aug, tta=a.tta, held_out_tta=acc_tta, naug=a.naug, steps=a.steps, seed=a.seed, held_out=acc, seconds=time.perf_counter() - t0)


def table(rows: list[dict]) -> str:
    groups = defaultdict(list)
    for r in rows: groups[(r['input'], r.get('hidden', 64), r.get('depth', 2), r.get('aug', 'affine'), r['naug'], r['steps'])].append(r)
    out = ["# mmdiff captioning readers", "", "`python benchmarks/captioning_readers.py ...`: a transformer classifier on one input "
           "representation of the 1,500 training digits, accuracy on the 297 held-out digits.", "",
           "| input | stem width x depth | augmented copies | steps | seeds | held-out accuracy per seed | mean | with TTA (the digit + N shifts) |",
           "|---|---|---|---|---|---|---|---|"]
    for (inp, hidden, depth, aug, naug, steps), rs in sorted(groups.items(), key=lambda kv: (INPUTS.index(kv[0][0]),) + kv[0][1:]):
        rs = sorted({r['seed']: r for r in rs}.values(), key=lambda r: r['seed'])   # a rerun of a seed (same numbers, plus TTA) replaces it
        acc = [r['held_out'] for r in rs]
        stem = f"{hidden} x {depth}" if inp == 'conv3' else ''
        tta = [r for r in rs if r.get('tta')]
        tta = ", ".join(f"seed {r['seed']}: {100 * r['held_out_tta']:.1f}" for r in tta) + f" (N = {tta[0]['tta']})" if tta else ''
        out.append(f"| {inp} | {stem} | {naug} {aug if naug else ''} | {steps} | {','.join(str(r['seed']) for r in rs)} | "
                   + ", ".join(f"{100 * v:.1f}" for v in acc) + f" | {100 * sum(acc) / len(acc):.1f} % | {tta} |")
    return "\n".join(out) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--input', choices=INPUTS, default='codes'); p.add_argument('--naug', type=int, default=0)
    p.add_argument('--hidden', type=int, default=64); p.add_argument('--depth', type=int, default=2)
    p.add_argument('--aug', choices=('affine', 'shift'), default='affine'); p.add_argument('--tta', type=int, default=0)
    p.add_argument('--seed', type=int, default=0); p.add_argument('--steps', type=int, default=3000)
    p.add_argument('--lr', type=float, default=1e-3); p.add_argument('--threads', type=int, default=1)
    p.add_argument('--table', action='store_true'); p.add_argument('--out-dir', default=str(HERE / 'results'))
    jsonl_run_or_table(p.parse_args(argv), 'captioning_readers', run, table)

if __name__ == '__main__': main()
