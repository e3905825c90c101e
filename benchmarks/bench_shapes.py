#!/usr/bin/env python
"""Shapes benchmark for mmdiff (issue #3: "shapes >= 90 % per attribute"): train an RGB image tokenizer and a unified
text+image masked-diffusion model on procedural coloured shapes within a CPU budget, then check prompt following
(text -> image) and captioning (image -> text) per attribute -- colour, shape, size, position -- from pixels.

One process, one measurement after the other. Nothing is asserted; every number is written to the results files.

    python benchmarks/bench_shapes.py --quick      # < 2 min smoke test: tiny tokenizer and model, 30 s of training
    python benchmarks/bench_shapes.py              # the full run: ~10 min of training (tokenizer + denoiser) on a 2-core CPU

Training goes through `mmdiff train --images`'s own path, as `mmdiff.recipes.train_digits` does: the shapes are written once
as an image-caption folder (`metadata.jsonl`, each image's `text` = its canonical caption first, then every caption template),
a nested settings dict (the results JSON keeps it as `settings`) is resolved with `mmdiff.run.resolve` and trained by
`mmdiff.run.train_images`, and everything is evaluated through the saved pipeline (`MMDiff.from_pretrained`).

See benchmarks/README.md for what each number means.
"""
from __future__ import annotations
import argparse, itertools, json, os, re, tempfile, time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from common import apply_profile, add_run_flags, start_run
from mmdiff.core import atomic_write_text
from mmdiff.data import shapes, shape_attributes, SHAPE_TEMPLATES, COLOURS, SHAPES, SIZES, POSITIONS, as_chw, as_hwc, shape_caption
from mmdiff.imagetok import as_float_images, code_stats, code_given_patch
from mmdiff.sources import write_image_folder
from mmdiff.run import resolve, train_images
from mmdiff.pipeline import MMDiff

HERE = Path(__file__).resolve().parent
ATTRS = ('colour', 'shape', 'size', 'position')
VALUES = dict(colour=tuple(COLOURS), shape=SHAPES, size=SIZES, position=POSITIONS)

# Defaults of the full run and of `--quick`; a flag given on the command line wins over both.
FULL = dict(n_train=4000, n_caption=384, tok_local=1, tok_down=2, tok_codes=128, tok_hidden=32, tok_steps=1500,
            d_model=128, n_layer=4, n_head=4, batch_size=32, lr=2e-3, budget_s=510.0, plan_steps=4000, t2i_share=0.75, w_mmu=1.0,
            code_emb_scale=1.0, prompts_per_combo=4, sample_steps='16', cfg_scales='0,1', temperatures='1,0.5')
QUICK = dict(n_train=1000, n_caption=96, tok_local=1, tok_down=2, tok_codes=128, tok_hidden=32, tok_steps=400,
             d_model=64, n_layer=2, n_head=2, batch_size=32, lr=2e-3, budget_s=30.0, plan_steps=500, t2i_share=0.5, w_mmu=1.0,
             code_emb_scale=1.0, prompts_per_combo=1, sample_steps='8', cfg_scales='0,3', temperatures='1')
TYPES = dict(lr=float, budget_s=float, t2i_share=float, w_mmu=float, code_emb_scale=float, sample_steps=str, cfg_scales=str, temperatures=str)


# ----------------------------------------------------------------------------------------------------------------------
# The training data and the run's settings (`mmdiff train --images` trains the tokenizer and the denoiser)
def write_shapes_folder(dir, n: int, seed: int = 0) -> Path:
    """`mmdiff.data.shapes(n, 16, seed)` as an image-caption folder `dir` (`mmdiff.sources.write_image_folder`, written
    once): `0000.png` ... (16×16 RGB) and a `metadata.jsonl` whose `text` lists the image's canonical caption
    (`shape_caption`, what captioning learns) first, then every template of SHAPE_TEMPLATES (text-to-image items draw one
    of them at random)."""
    images, attrs, _ = shapes(n, 16, seed)
    # the canonical caption is template 0, so it comes first and every template occurs once: a uniform draw over the
    # list is the old `shape_caption(attrs, rng)`, and captioning learns `shape_caption(attrs)`, as before
    texts = [[shape_caption(x)] + [prompt(x, t) for t in range(len(SHAPE_TEMPLATES)) if prompt(x, t) != shape_caption(x)]
             for x in attrs]
    return write_image_folder(dir, images.numpy(), texts, 'a shapes')

def shapes_config(a, images, out, dev) -> dict:
    "The `mmdiff train` settings (nested dict, as in a config file) of this benchmark on the folder `images`, into `out`."
    image = dict(image_size=16, channels=3, val_every=0,                           # every image trains (no held-out split)
                 down=a.tok_down, n_codes=a.tok_codes, tok_hidden=a.tok_hidden, tok_patch_local=bool(a.tok_local), tok_steps=a.tok_steps,
                 n_text=512,                                                         # room for every word: captions of <= 11 tokens
                 t2i_weight=a.t2i_share, mmu_weight=a.w_mmu, cond_drop=0.1, caption_all=False,
                 reader=False,                                                       # captioning reads the codes only, as this benchmark always did
                 caption_aug=0, code_emb_scale=a.code_emb_scale, default_cfg=1.0, n_samples=0)
    train = dict(max_steps=a.plan_steps,                                             # a first plan, re-planned at the end of warmup
                 batch_size=a.batch_size, lr=a.lr, warmup_steps=min(200, a.plan_steps // 10), eval_every=0, save_every=0,
                 budget_s=a.budget_s, time_limit_s=1.2 * a.budget_s, progress=bool(a.progress), cpu=dev.type == 'cpu')
    return dict(images=str(images), out=str(out), seed=a.seed, resume=False, schedule='linear', image=image,   # LLaDA's schedule, as before
                attention=a.attention,
                model=dict(d_model=a.d_model, n_layer=a.n_layer, n_head=a.n_head), train=train)


# ----------------------------------------------------------------------------------------------------------------------
# Scoring attributes: read from pixels (t2i) or from the words of a caption (captioning)
def caption_attributes(text: str) -> dict:
    "The colour / shape / size / position a caption names: the single distinct value of each found in it, else None."
    words = re.findall(r'[a-z]+', text.lower())
    found = dict(colour={w for w in words if w in COLOURS}, shape={w for w in words if w in SHAPES},
                 size={w for w in words if w in SIZES},
                 position={f'{v}-{h}' for v, h in re.findall(r'\b(top|bottom)[\s-]+(left|right)\b', text.lower())})
    return {k: next(iter(v)) if len(v) == 1 else None for k, v in found.items()}

def score(pred: list[dict], true: list[dict]) -> dict:
    "Per-attribute accuracy, all-four accuracy and per-attribute confusion counts {true: {pred: n}}."
    out = {k: float(np.mean([p[k] == t[k] for p, t in zip(pred, true)])) for k in ATTRS}
    out['all'] = float(np.mean([all(p[k] == t[k] for k in ATTRS) for p, t in zip(pred, true)]))
    out['confusion'] = {k: {v: dict(Counter(str(p[k]) for p, t in zip(pred, true) if t[k] == v)) for v in VALUES[k]} for k in ATTRS}
    return out

def all_combos() -> list[dict]:
    "The 96 attribute combinations."
    return [dict(colour=c, shape=s, size=z, position=p) for c, s, z, p in itertools.product(COLOURS, SHAPES, SIZES, POSITIONS)]

def prompt(attrs: dict, template: int) -> str:
    "Caption of `attrs` with template number `template` of SHAPE_TEMPLATES."
    t = SHAPE_TEMPLATES[template % len(SHAPE_TEMPLATES)]
    return t.format(size=attrs['size'], colour=attrs['colour'], shape=attrs['shape'], pos=attrs['position'].replace('-', ' '))


# ----------------------------------------------------------------------------------------------------------------------
# Evaluation
@torch.no_grad()
def eval_t2i(pipe: MMDiff, prompts: list[str], attrs: list[dict], steps: int, cfg_scale: float, seed: int,
             temperature: float = 1.0) -> tuple[dict, np.ndarray, list[dict]]:
    "Generate one image per prompt (`pipe.generate_image`, one call: one random stream), read its attributes from pixels, score them."
    t0 = time.perf_counter()
    imgs = pipe.generate_image(prompts, steps=steps, cfg_scale=cfg_scale, temperature=temperature, seed=seed)   # uint8 (N,H,W,3)
    s = time.perf_counter() - t0
    read = [shape_attributes(im) for im in imgs]
    r = score(read, attrs)
    r.update(cfg_scale=cfg_scale, temperature=temperature, steps=steps, n=len(prompts), ms_per_image=1000 * s / len(prompts),
             empty=float(np.mean([x['colour'] is None for x in read])),
             distinct_images_per_combo=float(np.mean([len({imgs[j].tobytes() for j in range(len(attrs)) if attrs[j] == c})
                                                      for c in {json.dumps(x, sort_keys=True): x for x in attrs}.values()])))
    return r, imgs, read

@torch.no_grad()
def eval_caption(pipe: MMDiff, images: torch.Tensor, attrs: list[dict], batch: int = 128) -> dict:
    "Caption uint8 `images` (N,H,W,3) (`pipe.caption`: LLaDA sampler, temperature 0, one token per step), parse the captions, score them."
    t0, caps = time.perf_counter(), []
    for i in range(0, len(images), batch):
        caps += pipe.caption(images[i:i + batch].numpy())
    s = time.perf_counter() - t0
    r = score([caption_attributes(c) for c in caps], attrs)
    r.update(n=len(caps), ms_per_caption=1000 * s / len(caps), exact_canonical=float(np.mean([c.strip() == shape_caption(a) for c, a in zip(caps, attrs)])),
             examples=[dict(caption=c, truth=shape_caption(a)) for c, a in list(zip(caps, attrs))[:12]])
    return r

def save_grid(imgs: np.ndarray, attrs: list[dict], read: list[dict], path: Path, title: str):
    "One generated sample per attribute combination: rows colour x shape, columns size x position; wrong ones framed red."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows, cols = list(itertools.product(COLOURS, SHAPES)), list(itertools.product(SIZES, POSITIONS))
    first = {}
    for j, a in enumerate(attrs): first.setdefault((a['colour'], a['shape'], a['size'], a['position']), j)
    fig, axs = plt.subplots(len(rows), len(cols), figsize=(len(cols) * 0.9 + 1.2, len(rows) * 0.9 + 0.8))
    for r, (c, s) in enumerate(rows):
        for k, (z, p) in enumerate(cols):
            ax = axs[r, k]; ax.set_xticks([]); ax.set_yticks([])
            j = first.get((c, s, z, p))
            if j is None: ax.axis('off'); continue
            ax.imshow(imgs[j], interpolation='nearest')
            ok = all(read[j][q] == attrs[j][q] for q in ATTRS)
            for sp in ax.spines.values(): sp.set_color('limegreen' if ok else 'red'); sp.set_linewidth(1.5 if ok else 3)
            if r == 0: ax.set_title(f"{z}\n{p}", fontsize=7)
            if k == 0: ax.set_ylabel(f"{c}\n{s}", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=100, bbox_inches='tight'); plt.close(fig)
    path.chmod(0o644)


# ----------------------------------------------------------------------------------------------------------------------
# Report
def pct(x): return '—' if x is None else f"{100 * x:.1f} %"

def markdown(res: dict) -> str:
    a, mi, tk, tr = res['args'], res['machine'], res['tokenizer'], res['train']
    ok = lambda x: '✅' if x >= 0.9 else '❌'
    att = a.get('attention', 'full')
    L = [f"# mmdiff shapes benchmark{' (QUICK smoke test: tiny model, not a result)' if a['quick'] else ''}"
         f"{'' if att == 'full' else f', attention {att}'}", "",
         f"Command: `{res['command']}`", "",
         f"Machine: torch {mi['torch']} · device `{mi['device']}`{' (' + mi['gpu'] + ')' if 'gpu' in mi else ''} · CPU {mi['cpu']} "
         f"({mi.get('cpu_count', '?')} logical cores, load avg {mi.get('load_avg_1m_at_start', float('nan')):.2f} at start, "
         f"{res.get('load_avg_1m_at_end', float('nan')):.2f} at the end) · torch threads {mi['torch_threads']} · Python {mi['python']} · "
         f"{mi['date']} · total {res['total_s']:.0f} s", "",
         f"Data: `mmdiff.data.shapes(n, 16, seed)` RGB 16×16, training set {a['n_train']} images of seed {a['seed']} "
         f"({res['data']['distinct_train_images']} distinct images; every one of the 96 attribute combinations occurs). "
         f"Text-to-image prompts: all 96 combinations × {a['prompts_per_combo']} caption template(s) = {res['t2i'][0]['n']} prompts. "
         f"Captioning: {a['n_caption']} images of seed {a['seed'] + 1} (a different seed; note that only "
         f"{res['data']['distinct_train_images']} distinct images exist at 16×16, so {pct(res['data']['caption_images_in_train'])} "
         f"of them also occur, pixel for pixel, in the training set).", "",
         f"**Training time: {res['train_time_s']:.0f} s** = tokenizer {tk['train_s']:.0f} s + denoiser {tr['wall_s']:.0f} s "
         f"({tr['steps']} of {tr['planned_steps']} planned steps; budget {a['budget_s']:g} s for the denoiser); the whole "
         f"`mmdiff.run.train_images` call (folder check, data preparation, tokenizer, encoding, denoiser, saving) took {res['run']['seconds']:.0f} s "
         f"on {res['train_threads']} torch thread(s).", "",
         "Trained through `mmdiff train --images`'s path (`mmdiff.run.train_images`) on the shapes written as an image-caption folder; "
         "the settings are `settings` in the results JSON. To train the same run by hand: write the folder with "
         f"`bench_shapes.write_shapes_folder(DIR, {a['n_train']}, {a['seed']})`, save `settings` as `settings.json` and run "
         "`mmdiff train --config settings.json --images DIR --out OUT`.", "",
         "## Image tokenizer", "",
         f"`VQConfig(image_size=16, channels=3, down={a['tok_down']}, n_codes={a['tok_codes']}, hidden={a['tok_hidden']}, patch_local={bool(a.get('tok_local', 0))})` → "
         f"{tk['tokens_per_image']} tokens per image, {a['tok_steps']} steps of `train_tokenizer` (binary cross-entropy reconstruction loss).", "",
         "| held-out PSNR | codebook usage | perplexity | H(code \\| patch) | codes on black patches | colour | shape | size | position | all four |",
         "|---|---|---|---|---|---|---|---|---|---|",
         f"| {tk['psnr']:.2f} dB | {tk['usage']:.1f} % | {tk['perplexity']:.1f} | {tk['h_code_given_patch']:.2f} nats | {tk['codes_for_black_patches']} | "
         + ' | '.join(pct(tk['recon_attrs'][k]) for k in ATTRS) + f" | {pct(tk['recon_attrs']['all'])} |", "",
         f"Attribute columns: `shape_attributes` on reconstructions (encode → decode) of {tk['n_heldout']} held-out images — "
         "the ceiling for generation through this tokenizer. H(code | patch): mean entropy of the code given the pixels it covers "
         f"({tk['distinct_patches']} distinct {16 // tk['grid']}×{16 // tk['grid']} patches in the training images); "
         "0 means one code per patch content. " + ("With `patch_local=True` a code is a function of its own patch's pixels, so "
         "H is 0 by construction and the denoiser models no tokenizer noise (see README)." if a.get('tok_local') else
         "The conv VQ-VAE's codes also depend on the neighbouring pixels (overlapping receptive fields) and the EMA codebook "
         "spends many codes on the black background, so the denoiser must also learn that noise (see README)."), "",
         "## Unified model", "",
         f"`Denoiser(ModelConfig(d_model={a['d_model']}, n_layer={a['n_layer']}, n_head={a['n_head']}))`, "
         f"{res['model']['params'] / 1e6:.2f} M parameters, vocab {res['model']['vocab_size']}, sequences of {res['model']['seq_len']} tokens"
         + (f", image-code embeddings started from the codebook (`init_code_embeddings`, scale {a['code_emb_scale']:g}); " if a['code_emb_scale'] > 0 else "; ") +
         f"no pixel reader (`image.reader = false`: captioning reads the codes only); "
         f"mix {a['t2i_share']:.0%} t2i (random template, caption dropped 10 %) / {1 - a['t2i_share']:.0%} captioning "
         f"(one canonical caption per image), `MaskedDiffusion(task_weights=(1, 1, {a['w_mmu']:g}))`, batch {a['batch_size']}, "
         f"AdamW lr {a['lr']:g} with cosine decay over the steps planned at the end of warmup ({res['settings']['train']['warmup_steps']} "
         f"steps of a first plan of {a['plan_steps']}; hard stop at 1.2 × budget). Final train loss (last 10 % of steps): "
         f"t2i {tr['loss_t2i']:.3f}, captioning {tr['loss_mmu']:.3f}; {tr['tok_per_s']:,.0f} tokens/s.", "",
         "## Results (target: ≥ 90 % per attribute)", "",
         "| task | setting | colour | shape | size | position | all four | ms / item |", "|---|---|---|---|---|---|---|---|"]
    for r in res['t2i']:
        L.append(f"| text → image | MaskGIT {r['steps']} steps, CFG {r['cfg_scale']:g}, temperature {r.get('temperature', 1.0):g} | " + ' | '.join(f"{pct(r[k])} {ok(r[k])}" for k in ATTRS)
                 + f" | {pct(r['all'])} | {r['ms_per_image']:.1f} |")
    c = res['caption']
    L.append("| image → text | LLaDA sampler, temperature 0, 1 token / step | " + ' | '.join(f"{pct(c[k])} {ok(c[k])}" for k in ATTRS)
             + f" | {pct(c['all'])} | {c['ms_per_caption']:.1f} |")
    L += ["", "Text → image (`MMDiff.generate_image` of the saved pipeline; ms / item includes decoding): every generated image is decoded by the tokenizer and read back with `mmdiff.data.shape_attributes` "
          "(the pixel checker; 100 % on clean images). Image → text: a caption is right on an attribute when it names that "
          f"attribute's true value and no other value of it (`MMDiff.caption`); {pct(c['exact_canonical'])} of the captions are exactly the canonical caption.",
          "", f"Samples: `shapes_samples{'_quick' if a['quick'] else ''}.png` (one sample per combination at {res['grid_cfg'][-3] if len(res['grid_cfg']) == 3 else a['sample_steps']} steps, CFG {res['grid_cfg'][-2]:g}, temperature {res['grid_cfg'][-1]:g}; red frame = some attribute wrong).", ""]
    L += ["Caption examples (generated → truth):", ""] + [f"- `{e['caption'].strip()}` → `{e['truth']}`" for e in c['examples'][:6]]
    return '\n'.join(L) + '\n'


# ----------------------------------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Outputs: <out-dir>/shapes_bench.md, shapes_bench.json and shapes_samples.png (with --quick: *_quick.*). "
                                       "--plan-steps is only the first plan of the denoiser's steps (it sets the warmup, min(200, plan / 10)); "
                                       "the trainer re-plans them at the end of warmup to fill --budget-s (--budget-s 0: exactly --plan-steps steps, no time limit).")
    p.add_argument('--quick', action='store_true', help='tiny tokenizer and model, 30 s of training: a smoke test of the script')
    for k in FULL: p.add_argument('--' + k.replace('_', '-'), type=TYPES.get(k, int), default=None, help=f"default {FULL[k]} / quick {QUICK[k]}")
    add_run_flags(p, HERE / 'results')
    p.add_argument('--attention', default='full', help="the denoiser's attention: full, or block:N with N dividing the image's codes "
                   "(8 = one row of the 8x8 code grid); a block-wise model samples with its exact KV cache")
    p.add_argument('--run-dir', default=None, help='keep the image-caption folder (DIR/shapes-N-seedS) and the run folder with the saved '
                   'pipeline (DIR/run) here; default: a temporary folder, deleted at the end')
    a = p.parse_args(argv)
    return apply_profile(a, QUICK if a.quick else FULL)

def main(argv=None):
    a = parse_args(argv)
    command, T0, dev, mi = start_run(a, argv, 'shapes benchmark')
    images, attrs, caps = shapes(a.n_train, 16, a.seed)
    cap_imgs, cap_attrs, _ = shapes(a.n_caption, 16, a.seed + 1)
    seen = {im.tobytes() for im in images.numpy()}
    data = dict(distinct_train_images=len(seen), caption_images_in_train=float(np.mean([im.tobytes() in seen for im in cap_imgs.numpy()])))

    # ---- 1.+2. image tokenizer and unified model: `mmdiff train --images` on the shapes as an image-caption folder
    tmp = None if a.run_dir else tempfile.TemporaryDirectory(prefix='mmdiff_shapes_')
    base = Path(a.run_dir or tmp.name)
    try:
        folder = write_shapes_folder(base/f'shapes-{a.n_train}-seed{a.seed}', a.n_train, a.seed)
        run_out = base/'run'
        settings = shapes_config(a, folder, run_out, dev)
        if a.threads: os.environ['OMP_NUM_THREADS'] = str(a.threads)     # the run's own thread choice (free cores) yields to it
        print(f"[1] image tokenizer: {'patch-local' if a.tok_local else 'conv'} coders, down {a.tok_down}, {a.tok_codes} codes, "
              f"hidden {a.tok_hidden}, {a.tok_steps} steps; [2] unified denoiser: {a.budget_s:g} s budget "
              f"(mmdiff.run.train_images on {folder})", flush=True)
        t0 = time.perf_counter()
        run = train_images(resolve(settings), progress=a.progress)
        run_s = time.perf_counter() - t0
        threads = torch.get_num_threads()
        pipe = MMDiff.from_pretrained(run_out, device=dev)
        hist = [json.loads(l) for l in (run_out/'metrics.jsonl').read_text().splitlines() if l.strip()]
        tok_meta = json.loads((run_out/'imagetok.json').read_text())
        planned = json.loads((run_out/(run_out/'latest').read_text().strip()/'train.json').read_text())['max_steps']   # after the re-plan
    finally:
        if tmp is not None: tmp.cleanup()
    tok = pipe.tokenizer

    # the tokenizer, measured on held-out images (seed + 1) as before
    held = as_chw(cap_imgs).to(dev)
    rec_codes = tok.encode(held)
    rec = as_hwc(tok.decode(rec_codes).cpu()).numpy()
    mse = (as_float_images(torch.from_numpy(rec)) - as_float_images(cap_imgs)).pow(2).mean().item()
    tk = dict(train_s=tok_meta['seconds'], tokens_per_image=tok.tokens_per_image, grid=tok.grid[0], n_codes=tok.n_codes, n_heldout=len(cap_imgs), mse=mse,
              psnr=10 * np.log10(1 / max(mse, 1e-12)), **code_stats(rec_codes, tok.n_codes),
              recon_attrs=score([shape_attributes(r) for r in rec], cap_attrs))
    tk.update(code_given_patch(tok, as_chw(images).to(dev)))
    print(f"  tokenizer: {tk['train_s']:.0f} s, held-out PSNR {tk['psnr']:.2f} dB, usage {tk['usage']:.0f} %, attributes of reconstructions: "
          + ', '.join(f"{k} {pct(tk['recon_attrs'][k])}" for k in ATTRS), flush=True)

    L = run['seq_len']
    max_cap = max(len(pipe.vocab.encode(prompt(c, t))) for c in all_combos() for t in range(len(SHAPE_TEMPLATES)))
    last = hist[-max(1, len(hist) // 10):]
    mean = lambda k: float(np.mean([h[k] for h in last if k in h])) if any(k in h for h in last) else float('nan')
    wall = hist[-1]['step'] * a.batch_size * L / hist[-1]['tok_per_s'] if hist else 0.0   # the training loop's own time
    tr = dict(first_plan_steps=a.plan_steps, planned_steps=planned, steps=len(hist), wall_s=wall, loss=mean('loss'), loss_t2i=mean('loss_t2i'),
              loss_mmu=mean('loss_mmu'), tok_per_s=hist[-1]['tok_per_s'] if hist else 0.0,
              loss_curve=[dict(step=h['step'], loss=h['loss'], loss_t2i=h.get('loss_t2i'), loss_mmu=h.get('loss_mmu'))
                          for h in hist[::max(1, len(hist) // 40)]])
    print(f"  denoiser: {run['params'] / 1e6:.2f} M parameters, L = {L} ({tok.tokens_per_image} image tokens, captions ≤ {max_cap} tokens); "
          f"{len(hist)} of {planned} planned steps in {wall:.0f} s; final loss t2i {tr['loss_t2i']:.3f}, mmu {tr['loss_mmu']:.3f}", flush=True)

    # ---- 3. evaluation
    print("[3] text -> image (all 96 combinations) and captioning (held-out seed)", flush=True)
    ev_attrs = [c for c in all_combos() for _ in range(a.prompts_per_combo)]
    ev_prompts = [prompt(c, t) for c in all_combos() for t in range(a.prompts_per_combo)]
    t2i_rows, samples = [], {}
    floats = lambda s: [float(v) for v in s.split(',')]
    for n_steps, cfg_scale, temp in [(n, c, t) for n in map(int, floats(a.sample_steps)) for c in floats(a.cfg_scales) for t in floats(a.temperatures)]:
        r, imgs, read = eval_t2i(pipe, ev_prompts, ev_attrs, n_steps, cfg_scale, a.seed, temp)
        t2i_rows.append(r); samples[(n_steps, cfg_scale, temp)] = (imgs, read)
        print(f"  t2i {n_steps} steps, CFG {cfg_scale:g}, temperature {temp:g}: " + ', '.join(f"{k} {pct(r[k])}" for k in (*ATTRS, 'all')), flush=True)
    capr = eval_caption(pipe, cap_imgs, cap_attrs)
    print("  captioning: " + ', '.join(f"{k} {pct(capr[k])}" for k in (*ATTRS, 'all')), flush=True)

    bestr = max(t2i_rows, key=lambda r: r['all']); best = (bestr['steps'], bestr['cfg_scale'], bestr['temperature'])
    out = Path(a.out_dir); out.mkdir(parents=True, exist_ok=True)
    sfx = '_quick' if a.quick else ''                                       # --quick never overwrites the full run's files
    md_f, json_f, png_f = out / f'shapes_bench{sfx}.md', out / f'shapes_bench{sfx}.json', out / f'shapes_samples{sfx}.png'
    save_grid(samples[best][0], ev_attrs, samples[best][1], png_f,
                  f"mmdiff shapes: one sample per prompt, CFG {best[1]:g}, temperature {best[2]:g}, {best[0]} steps (red = an attribute is wrong)")
    res = dict(command=command, machine=mi, args=vars(a), settings=settings, run=dict(run, wall_s=run_s), train_threads=threads,
               data=data, tokenizer=tk, train=tr, train_time_s=tk['train_s'] + wall,
               model=dict(params=run['params'], vocab_size=pipe.vocab.vocab_size, seq_len=L, max_caption_tokens=max_cap),
               t2i=t2i_rows, caption=capr, grid_cfg=best)
    try: res['load_avg_1m_at_end'] = __import__('os').getloadavg()[0]
    except OSError: pass
    res['total_s'] = time.perf_counter() - T0
    md = markdown(res)
    atomic_write_text(md_f, md)
    atomic_write_text(json_f, json.dumps(res, indent=2, default=str))
    for f in (md_f, json_f): f.chmod(0o644)                                 # atomic_write_* leaves mkstemp's 0600
    print('\n' + md + f"\nwritten {md_f}, {json_f} and {png_f}", flush=True)
    return res

if __name__ == '__main__': main()
