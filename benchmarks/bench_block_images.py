#!/usr/bin/env python
"""Full attention vs block-wise text+image models (blocks of 1, 2 and 4 code rows) on the embedded digits: the same
denoiser (d 128, 4 layers), the same training steps, through `mmdiff train`'s path (the digits recipe with `attention`).

    python benchmarks/bench_block_images.py --attention full block:4 block:8 block:16 --steps 1500   # quality, ~35 min on 2 cores
    python benchmarks/bench_block_images.py --timing          # sampling speed at equal NFE; run it alone on the machine
    python benchmarks/bench_block_images.py --table           # results/block_images_bench.md and block_images_bench.png
    python benchmarks/bench_block_images.py --sweep --attention full block:4 --seed 3 --run 5 --n-per-digit 30
                                                               # the trained models at other sampler settings (a minute)

Quality (one JSON line per model in `results/block_images.jsonl`): text-to-image accuracy (100 prompts judged by a classifier
trained on the real digits), held-out captioning accuracy (the 297 test digits), diversity, and the image-token NELBO of the
test digits under their canonical caption. Speed (`results/block_images_timing.jsonl`): wall time per image of
`generate_image_codes` at 16 steps with guidance (32 network evaluations for every model), block-wise with and without the
KV cache; for the trained digits pipelines and for untrained models of the same width on longer images (8x8 and 16x16 code
grids: timing only, their weights do not matter). Nothing is asserted.
"""
from __future__ import annotations
import argparse, json, statistics, sys, time
from pathlib import Path
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import machine_info, command_line  # noqa: E402

RESULTS = HERE / 'results'


def rows_of(att: str, width: int) -> str:
    "How many code rows a block holds."
    return 'full attention' if att == 'full' else f"{int(att.split(':')[1]) // width} row(s)"


def image_nelbo(pipe, n_t: int = 8) -> float:
    "NELBO (nats per image code) of the test digits under their canonical caption, in the model's layout."
    from mmdiff.data import digits, T2IDataset, layout_for
    from mmdiff.evaluate import nelbo
    from mmdiff.model import BlockDiff
    imgs, labels = digits('test')
    codes = pipe.encode_images(imgs.numpy()).cpu()
    caps = [f'a handwritten digit {d}' for d in labels.tolist()]
    ds = T2IDataset(pipe.vocab, codes, caps, pipe.cfg.seq_len, len(caps), cond_drop=0.0, layout=layout_for(pipe.cfg.attention))
    mode = pipe.model.attention
    bs = mode.block_size if isinstance(mode, BlockDiff) else None
    return nelbo(pipe.model, ds, pipe.vocab.mask_id, n_seqs=len(ds), n_t=n_t, block_size=bs)['nelbo']


def quality(a, att: str) -> dict:
    "Train one model (or reuse its saved pipeline) and measure it."
    from mmdiff.recipes import DigitsRecipe, train_digits, evaluate_t2i
    from mmdiff.pipeline import MMDiff
    from mmdiff.evaluate import train_digit_classifier, caption_accuracy
    from mmdiff.data import digits
    out = Path(a.work) / f"{att.replace(':', '')}_seed{a.seed}"
    t0 = time.perf_counter()
    if (out / 'pipeline.json').exists() and (out / 'metrics.jsonl').exists():
        pipe = MMDiff.from_pretrained(out)
        hist = [json.loads(l) for l in (out / 'metrics.jsonl').read_text().splitlines()]
    else:
        pipe = train_digits(out, DigitsRecipe(steps=a.steps, attention=att, seed=a.seed), progress=a.progress)
        hist = pipe.history
    train_s = time.perf_counter() - t0
    steps = [h for h in hist if 'step' in h and 'loss' in h]
    tps = [h['tok_per_s'] for h in steps if h.get('tok_per_s')]
    ms_step = 1000 * 32 * pipe.cfg.seq_len / statistics.median(tps) if tps else None        # batch 32 of seq_len tokens
    clf = train_digit_classifier(*digits('train'))
    torch.manual_seed(a.seed)
    seeds = [a.seed + k for k in range(a.sample_seeds)]                                # sampling seeds of the same model
    evs = [evaluate_t2i(pipe, clf, a.n_per_digit, 16, 1.0, s) for s in seeds]
    cfg0 = evaluate_t2i(pipe, clf, a.n_per_digit, 16, 0.0, a.seed)
    t07s = [evaluate_t2i(pipe, clf, a.n_per_digit, 16, 1.0, s, temperature=0.7) for s in seeds]
    mean = lambda rs, k: sum(r[k] for r in rs) / len(rs)
    te_img, te_lab = digits('test')
    t0 = time.perf_counter()
    caps = pipe.caption(te_img.numpy())                                                 # greedy, one token a step
    ms_cap = 1000 * (time.perf_counter() - t0) / len(caps)
    lens = [len(pipe.vocab.encode(c)) for c in caps]
    return dict(attention=att, code_rows_per_block=rows_of(att, 4), seed=a.seed, steps=len(steps), prompts=10 * a.n_per_digit, params=pipe.model.num_params(),
                seq_len=pipe.cfg.seq_len, t2i_acc=mean(evs, 't2i_acc'), t2i_acc_cfg0=cfg0['t2i_acc'],
                t2i_acc_t07=mean(t07s, 't2i_acc'), sample_seeds=seeds, t2i_acc_seeds=[r['t2i_acc'] for r in evs],
                t2i_acc_t07_seeds=[r['t2i_acc'] for r in t07s], diversity_t07=mean(t07s, 'diversity_ratio'),
                caption_acc=caption_accuracy(caps, te_lab), diversity=mean(evs, 'diversity_ratio'), image_nelbo=image_nelbo(pipe), caption_tokens_mean=sum(lens) / len(lens),
                caption_tokens_max=max(lens), ms_per_step=ms_step, train_wall_s=train_s, ms_per_caption=ms_cap,
                command=command_line(), **machine_info(pipe.device))


SWEEP = [(16, 1.0, 0.0), (16, 1.0, 1.0), (16, 1.0, 3.0), (16, 0.3, 1.0), (16, 0.0, 1.0), (64, 1.0, 1.0), (4, 1.0, 1.0)]


def sweep(a) -> list[dict]:
    """Text-to-image of the saved pipelines in --work (per --attention and --seed) at other sampler settings: (steps,
    temperature, guidance) in SWEEP; tells a gap of the model from a gap of its sampler."""
    from mmdiff.recipes import evaluate_t2i
    from mmdiff.pipeline import MMDiff
    from mmdiff.evaluate import train_digit_classifier
    from mmdiff.data import digits
    torch.manual_seed(0)
    clf = train_digit_classifier(*digits('train'))
    rows = []
    for att in a.attention:
        out = Path(a.work) / f"{att.replace(':', '')}_seed{a.seed}"
        if not (out / 'pipeline.json').exists(): raise SystemExit(f"no trained pipeline {out}: train it first (without --sweep)")
        pipe = MMDiff.from_pretrained(out)
        for steps, temp, w in SWEEP:
            r = evaluate_t2i(pipe, clf, a.n_per_digit, steps, w, a.seed, temperature=temp)
            rows.append(dict(attention=att, seed=a.seed, run=a.run, sample_steps=steps, temperature=temp, cfg_scale=w,
                             t2i_acc=r['t2i_acc'], diversity=r['diversity_ratio'], prompts=10 * a.n_per_digit,
                             command=command_line(), **machine_info(pipe.device)))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def sweep_rows(s: list[dict]) -> list[str]:
    "The sampler sweep as a table: one row per setting, text-to-image accuracy (diversity) per model and run."
    if not s: return []
    models = list(dict.fromkeys((r['run'], r['attention']) for r in s))
    L = ['', f"Sampler settings on the same trained models (`--sweep`: {s[0]['prompts']} prompts, sampling seed = training "
         "seed): text-to-image accuracy (diversity). A gap that no setting closes is the model's, not its sampler's.", '',
         '| steps | temperature | guidance | ' + ' | '.join(f"run {n} {att}" for n, att in models) + ' |',
         '|---|---|---|' + '---|' * len(models)]
    for st, temp, w in dict.fromkeys((r['sample_steps'], r['temperature'], r['cfg_scale']) for r in s):
        cell = {(r['run'], r['attention']): r for r in s if (r['sample_steps'], r['temperature'], r['cfg_scale']) == (st, temp, w)}
        L.append(f"| {st} | {temp:g} | {w:g} | " + ' | '.join(f"{cell[m]['t2i_acc']:.1%} ({cell[m]['diversity']:.2f})"
                                                              if m in cell else '–' for m in models) + ' |')
    return L


def time_images(model, vocab, n_tokens: int, L: int, B: int, use_cache, reps: int, steps: int = 16,
                caption: str = 'a handwritten digit 3') -> dict:
    "Median wall seconds per image of `generate_image_codes` with guidance, and its NFE."
    from mmdiff.multimodal import generate_image_codes
    caps = [caption] * B
    kw = dict(steps=steps, cfg_scale=1.0, generator=torch.Generator().manual_seed(0), return_stats=True)
    if use_cache is not None: kw['use_cache'] = use_cache
    generate_image_codes(model, vocab, caps, n_tokens, L, **kw)                       # warm-up
    walls, st = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        _, st = generate_image_codes(model, vocab, caps, n_tokens, L, **kw)
        walls.append(time.perf_counter() - t0)
    return dict(s_per_image=statistics.median(walls) / B, nfe=st.nfe, tokens_run=st.tokens_run)   # positions per image


def timing(a) -> list[dict]:
    "Sampling speed of every trained digits pipeline, and of untrained models on 8x8 and 16x16 code grids."
    from mmdiff.pipeline import MMDiff
    from mmdiff.model import Denoiser, ModelConfig, attention_mode
    from mmdiff.data import layout_for
    from mmdiff.vocab import Vocab
    if a.threads: torch.set_num_threads(a.threads)
    rows, info = [], machine_info(torch.device('cpu'))
    cases = []
    for att in a.attention:
        out = Path(a.work) / f"{att.replace(':', '')}_seed{a.seed}"
        if (out / 'pipeline.json').exists():
            p = MMDiff.from_pretrained(out)
            cases.append(('digits 8x8 px, 4x4 codes (trained)', att, p.model, p.vocab, p.n_tokens, p.cfg.seq_len, 4,
                          'a handwritten digit 3'))
    for d in a.pipelines:                                                              # other trained pipelines (e.g. shapes)
        p = MMDiff.from_pretrained(d)
        side = p.tokenizer.grid[1]
        name = Path(d).parent.name.split('_')[0]                                       # shapes_full/run -> shapes
        cases.append((f'{name} {p.cfg.image_size}x{p.cfg.image_size} px, {side}x{side} codes (trained)',
                      p.cfg.attention, p.model, p.vocab, p.n_tokens, p.cfg.seq_len, side, 'a small red circle at the top left'))
    base = cases[0][3] if cases else None
    caption = cases[0][7] if cases else None                                           # the first pipeline's prompt
    for side in a.grids:                                                               # untrained, timing only
        n = side * side
        vocab = Vocab(base.tokenizer, n_image_codes=64) if base else None
        if vocab is None: break
        n_cap = max(16, len(vocab.encode(caption)))                                     # caption budget of the layout
        for att in ['full'] + [f'block:{side * r}' for r in (1, 2, 4)]:
            L = layout_for(att).seq_len(vocab, n_cap, n)
            torch.manual_seed(0)
            m = Denoiser(ModelConfig(vocab_size=vocab.vocab_size, max_len=L, d_model=128, n_layer=4, n_head=4), attention_mode(att)).eval()
            cases.append((f'{side}x{side} codes (untrained, timing only)', att, m, vocab, n, L, side, caption))
    for what, att, model, vocab, n, L, width, caption in cases:
        for B in a.batch:
            for cache in ((None,) if att == 'full' else (True, False)):
                r = time_images(model, vocab, n, L, B, cache, a.reps, caption=caption)
                row = dict(images=what, attention=att, code_rows_per_block=rows_of(att, width), seq_len=L, batch=B,
                           cache=None if att == 'full' else cache, cache_writes='fused', **r, threads=torch.get_num_threads(),
                           load_avg_1m_at_start=info.get('load_avg_1m_at_start'), date=info['date'], command=command_line())
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def shapes_rows(res: Path) -> list[str]:
    "The shapes runs of bench_shapes.py --attention (results/shapes_blocks/*/shapes_bench.json) as table rows."
    rows = []
    for f in sorted(res.glob('shapes_blocks*/*/shapes_bench.json')):                  # shapes_blocks (run 1), shapes_blocks_runN
        r, run = json.loads(f.read_text()), f.parent.parent.name.partition('_run')[2] or '1'
        att, t, c = r['args'].get('attention', 'full'), r['t2i'][0], r['caption']
        cell = lambda d: ' / '.join(f"{100 * d[k]:.1f}" for k in ('colour', 'shape', 'size', 'position', 'all'))
        rows.append(f"| {run} | {att} | {r['train']['steps']} | {r['run']['seq_len']} | {cell(t)} | {cell(c)} |")
    return rows


def writes(r: dict) -> str:
    "How a timing row's sampler stored finished blocks: older runs spent a pass of its own on each (and on the prompt)."
    if r['cache'] is not True: return '–'
    return 'fused' if r.get('cache_writes') == 'fused' else 'own pass'


def latest_runs(t: list[dict]) -> dict:
    "The date of the latest timing run of every kind of image."
    latest = {}
    for r in t: latest[r['images']] = max(latest.get(r['images'], ''), r['date'])
    return latest


def timing_rows(t: list[dict]) -> list[str]:
    "The latest timing run of every kind of image, speed-ups within that run; then older runs of the same models, for comparison."
    latest = latest_runs(t)
    cur = [r for r in t if r['date'] == latest[r['images']]]
    old = [r for r in t if r['date'] != latest[r['images']]]
    full = {(r['date'], r['images'], r['batch']): r['s_per_image'] for r in t if r['attention'] == 'full'}
    def row(r):
        base = full.get((r['date'], r['images'], r['batch']))
        sp = f"{base / r['s_per_image']:.2f}×" if base else '–'
        cache = '–' if r['cache'] is None else ('yes' if r['cache'] else 'no')
        return (f"| {r['images']} | {r['attention']} | {r['code_rows_per_block']} | {r['seq_len']} | {r['batch']} | {cache} | "
                f"{writes(r)} | {r['nfe']} | {r['tokens_run']} | {1000 * r['s_per_image']:.2f} | {sp} |")
    head = ['| images | attention | block | seq len | batch | KV cache | cache writes | NFE | positions run / image | ms / image | '
            'speed-up vs full |', '|---|---|---|---|---|---|---|---|---|---|---|']
    dates = sorted(set(latest.values()))
    runs = f"run {dates[0]}" if len(dates) == 1 else 'runs: ' + ', '.join(f"{img}: {d}" for img, d in sorted(latest.items()))
    L = ['', f"Sampling speed: `generate_image_codes`, 16 steps with guidance (NFE 32 for every model), median of the runs, "
         f"{cur[0]['threads']} torch threads; {runs}. Speed-up = full attention's time / this row's time, same images, "
         "batch and run. Cache writes: *fused* = a finished block (and the prompt) enters the cache in the first pass of the next "
         "block, which runs it too; *own pass* = the sampler before that change, one extra pass per finished block and one for "
         "the prompt.", '', *head, *[row(r) for r in cur]]
    if old:
        L += ['', 'Older runs of the same script (other code or machine load; compare within a run):', '', *head,
              *[row(r) for r in old]]
    return L


def run_means(q: list[dict]) -> list[str]:
    """With more than one training run: each model's text-to-image and captioning accuracy averaged over the runs, and the
    gap to full attention paired by run (the runs that trained both), with its standard error when there are several."""
    runs = sorted({r.get('run', 1) for r in q})
    if len(runs) < 2: return []
    by = {(r['attention'], r.get('run', 1)): r for r in q}                     # the latest row of each model and run
    atts = list(dict.fromkeys(r['attention'] for r in q))
    L = ['', f"Mean over the training runs (the same command; a run differs from another in its training seed or in "
         "the torch thread count its training got, which changes the arithmetic and so the trajectory), in points against "
         "full attention; Δ is paired: the mean over the runs that trained both models of (this model − full attention), "
         "± its standard error:", '',
         '| attention | runs | text-to-image (cfg 1) | Δ vs full | per run | (cfg 1, temperature 0.7) | Δ vs full | captioning | '
         'Δ vs full | per run |', '|---|---|---|---|---|---|---|---|---|---|']
    def gap(att, k):
        if att == 'full': return '–'
        d = [100 * (by[att, n][k] - by['full', n][k]) for n in runs if (att, n) in by and ('full', n) in by and k in by[att, n]
             and k in by['full', n]]
        if not d: return '–'
        se = f" ± {statistics.stdev(d) / len(d) ** 0.5:.1f}" if len(d) > 1 else ''
        return f"{statistics.mean(d):+.1f}{se} ({len(d)})"
    for att in atts:
        mine = [by[att, n] for n in runs if (att, n) in by]
        per = lambda k: ' / '.join(f"{100 * r[k]:.1f}" for r in mine)
        avg = lambda k: f"{100 * statistics.mean(r[k] for r in mine if k in r):.1f}%" if any(k in r for r in mine) else '–'
        L.append(f"| {att} | {' '.join(str(r.get('run', 1)) for r in mine)} | {avg('t2i_acc')} | {gap(att, 't2i_acc')} | "
                 f"{per('t2i_acc')} | {avg('t2i_acc_t07')} | {gap(att, 't2i_acc_t07')} | {avg('caption_acc')} | "
                 f"{gap(att, 'caption_acc')} | {per('caption_acc')} |")
    return L


def table(q: list[dict], t: list[dict], res: Path = RESULTS, s: list[dict] | None = None) -> str:
    L = ['# Block-wise vs full attention in the unified text+image model (digits)', '']
    if q:
        seeds = ', '.join(str(x) for x in sorted({r['seed'] for r in q}))
        L += [f"Same denoiser ({q[0]['params'] / 1e6:.2f} M parameters), {q[0]['steps']} training steps of 32, training seeds {seeds} "
              "(column *seed*), "
              f"through `mmdiff train`'s path (digits recipe). Text-to-image: {q[0].get('prompts', 100)} prompts, 16 steps, judged by a classifier trained on "
              "the real digits; captioning: the 297 held-out test digits; image NELBO: nats per image code of the test digits. "
              "ms / train step: from the run's own token rate, while other jobs shared the 2-core machine (block-wise steps read "
              "x_t and x_0, twice the tokens): compare them loosely.", '',
              '| run | seed | attention | block | seq len | text-to-image (cfg 1) | (cfg 0) | (cfg 1, temperature 0.7) | captioning | '
              'diversity (cfg 1; temperature 0.7) | image NELBO | caption tokens (mean / max) | ms / train step |',
              '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
        for r in sorted(q, key=lambda r: r.get('run', 1)):
            ms = f"{r['ms_per_step']:.0f}" if r.get('ms_per_step') else '–'
            div = f"{r['diversity']:.2f}" if r.get('diversity') is not None else '–'
            t07 = f"{r['t2i_acc_t07']:.1%}" if 't2i_acc_t07' in r else '–'
            t1 = f"{r['t2i_acc']:.1%}"
            if len(r.get('sample_seeds', [])) > 1:                                       # mean (per sampling seed)
                t1 += ' (' + ' / '.join(f"{x:.1%}" for x in r['t2i_acc_seeds']) + ')'
                t07 += ' (' + ' / '.join(f"{x:.1%}" for x in r['t2i_acc_t07_seeds']) + ')'
            div += f"; {r['diversity_t07']:.2f}" if 'diversity_t07' in r else ''
            L.append(f"| {r.get('run', 1)} | {r['seed']} | {r['attention']} | {r['code_rows_per_block']} | {r['seq_len']} | {t1} | {r['t2i_acc_cfg0']:.1%} | "
                     f"{t07} | {r['caption_acc']:.1%} | {div} | {r['image_nelbo']:.3f} | {r['caption_tokens_mean']:.1f} / "
                     f"{r['caption_tokens_max']} | {ms} |")
    L += run_means(q)
    L += sweep_rows(s or [])
    sh = shapes_rows(res)
    if sh:
        L += ['', "Shapes (16×16 RGB, 8×8 codes: the longest image sequence trained here): `bench_shapes.py --attention full` and "
              "`--attention block:8` (one code row a block), same denoiser (d 128, 4 layers), same steps, no pixel reader; "
              "`results/shapes_blocks/` (run 1) and `results/shapes_blocks_run2/` (the same commands again; run 2's block-wise model "
              "trained on 1 torch thread, the others on 2); `results/shapes_blocks_run3/`: 2,000 steps (`--plan-steps 2000`), 2 threads. Text-to-image: 192 prompts (every attribute combination, 2 templates), 16 steps, CFG 1, "
              "read from pixels; captioning: 384 images of another seed. Per attribute, % (colour / shape / size / position / all four):",
              '', '| run | attention | steps | seq len | text-to-image | captioning |', '|---|---|---|---|---|---|', *sh]
    if t:
        L += timing_rows(t)
    return '\n'.join(L) + '\n'


def plot(t: list[dict], path: Path):
    "Bars of ms per image: one panel per (images, batch), batches in rows."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    imgs, batches = sorted({r['images'] for r in t}), sorted({r['batch'] for r in t}, reverse=True)
    fig, axs = plt.subplots(len(batches), len(imgs), figsize=(3.6 * len(imgs), 2.8 * len(batches)), squeeze=False)
    for i, B in enumerate(batches):
        for j, img in enumerate(imgs):
            ax, rs = axs[i, j], [r for r in t if (r['images'], r['batch']) == (img, B)]
            labels = ['full' if r['attention'] == 'full' else r['code_rows_per_block'] + (' cache' if r['cache'] else ' no cache')
                      for r in rs]
            colours = ['grey' if r['attention'] == 'full' else ('C0' if r['cache'] else 'C1') for r in rs]
            ax.barh(range(len(rs)), [1000 * r['s_per_image'] for r in rs], color=colours)
            ax.set_yticks(range(len(rs)), labels, fontsize=7)
            ax.invert_yaxis()
            ax.set_xlabel('ms per image (NFE 32)', fontsize=8)
            ax.set_title(f'{img}\nbatch {B}', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--attention', nargs='*', default=['full', 'block:4', 'block:8', 'block:16'])
    p.add_argument('--steps', type=int, default=1500, help='training steps of every model')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--run', type=int, default=1,
                   help='label of a training run: a repeat of the same seed (thread count and machine load change '
                        'the numerics) or another --seed')
    p.add_argument('--n-per-digit', type=int, default=10, help='text-to-image prompts per digit')
    p.add_argument('--sample-seeds', type=int, default=1,
                   help='text-to-image sampling seeds (seed, seed + 1, ...): accuracy and diversity are their mean')
    p.add_argument('--work', default=str(RESULTS.parent / 'work_block_images'), help='where the trained pipelines are kept')
    p.add_argument('--timing', action='store_true', help='measure sampling speed instead of training')
    p.add_argument('--grids', type=int, nargs='*', default=[8, 16], help='untrained code grids (side) to time')
    p.add_argument('--pipelines', nargs='*', default=[], help='more saved pipelines to time (e.g. the shapes runs of bench_shapes.py --run-dir)')
    p.add_argument('--batch', type=int, nargs='+', default=[16, 1])
    p.add_argument('--reps', type=int, default=3)
    p.add_argument('--threads', type=int, default=0)
    p.add_argument('--table', action='store_true')
    p.add_argument('--sweep', action='store_true', help='text-to-image of the trained pipelines over sampler settings (SWEEP)')
    p.add_argument('--progress', action='store_true')
    p.add_argument('--out-dir', default=str(RESULTS), help='where the results go')
    a = p.parse_args(argv)
    res = Path(a.out_dir)
    res.mkdir(parents=True, exist_ok=True)
    qlog, tlog, slog = res / 'block_images.jsonl', res / 'block_images_timing.jsonl', res / 'block_images_sweep.jsonl'
    if a.table:
        read = lambda f: [json.loads(l) for l in f.read_text().splitlines() if l.strip()] if f.exists() else []
        q = list({(r.get('run', 1), r['attention'], r['seed']): r for r in read(qlog)}.values())   # the last measurement of each model
        t = list({(r['date'], r['images'], r['attention'], r['batch'], r['cache']): r for r in read(tlog)}.values())
        sw = list({(r['run'], r['attention'], r['sample_steps'], r['temperature'], r['cfg_scale']): r for r in read(slog)}.values())
        md = table(q, t, res, sw)
        (res / 'block_images_bench.md').write_text(md)
        latest = latest_runs(t)
        if t: plot([r for r in t if r['date'] == latest[r['images']]], res / 'block_images_bench.png')
        print(md); return
    if a.sweep:
        rows = sweep(a)
        with open(slog, 'a') as f: f.writelines(json.dumps(r) + '\n' for r in rows)
        return
    if a.timing:
        rows = timing(a)
        with open(tlog, 'a') as f: f.writelines(json.dumps(r) + '\n' for r in rows)
        return
    if a.threads: torch.set_num_threads(a.threads)
    for att in a.attention:
        r = {**quality(a, att), 'run': a.run}
        print(json.dumps(r), flush=True)
        with open(qlog, 'a') as f: f.write(json.dumps(r) + '\n')


if __name__ == '__main__':
    main()
