#!/usr/bin/env python
"""Video as blocks of frames: a block-wise model that generates clips frame by frame with the exact KV cache, against
a full-attention model that generates all frames at once, on the moving digits of `mmdiff.video`.

Both models are `mmdiff.recipes.train_clips` runs with the same frame tokenizer (trained once), the same size, data mix,
batch and number of steps; they differ in attention (`block:16`, a block = one frame of 16 codes, vs `full`) and
objective (BD3-LM's x_t + x_0 vs LLaDA's). Sampling is at equal NFE: 8 MaskGIT steps per generated frame with guidance.
Scores (`mmdiff.recipes.evaluate_clips`): text-to-video content per frame (a digit classifier trained on the real
digits reads the 8 x 8 window of most ink), motion (direction of the centroid's first step), consistency (one digit in
every frame) on the 80 (digit, direction) prompts; captions of 200 held-out clips (test-split digits); wall time per
clip; and clips of twice the trained length, continued by a sliding window. A benchmark: it prints a table and writes
it to benchmarks/results/video_bench.md (+ .json, a PNG of sample clips); nothing is asserted.

    python benchmarks/bench_video.py                          # 20 min on 2 cores (measured, --threads 2)
    python benchmarks/bench_video.py --steps 3 --tokenizer-steps 3 --n-caption 8 --out-dir /tmp/v   # a smoke run
"""
from __future__ import annotations
import argparse, json, statistics, tempfile, time
from pathlib import Path

import numpy as np
import torch

from common import machine_info, command_line, write_results

HERE = Path(__file__).resolve().parent


def timing(pipe, prompts, reps: int, use_cache) -> float:
    "Median wall seconds per clip of `generate_video` (8 steps a frame, guidance) over `reps` runs."
    pipe.generate_video(prompts[:2], seed=0, use_cache=use_cache)                      # warm-up
    walls = []
    for r in range(reps):
        t0 = time.perf_counter()
        pipe.generate_video(prompts, seed=r, use_cache=use_cache)
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls) / len(prompts)


def sample_png(rows: list[tuple[str, np.ndarray, list[str]]], path: Path):
    "One block of rows per model: each row a generated clip, its prompt on the left."
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    n_rows = sum(len(c) for _, c, _ in rows)
    T = rows[0][1].shape[1]
    fig, axs = plt.subplots(n_rows, T, figsize=(1.1 * T + 2.6, 1.1 * n_rows))
    r = 0
    for name, clips, prompts in rows:
        for clip, p in zip(clips, prompts):
            for t in range(T):
                axs[r, t].imshow(clip[t], cmap='gray', vmin=0, vmax=255)
                axs[r, t].set_xticks([])
                axs[r, t].set_yticks([])
            axs[r, 0].set_ylabel(f"{name}\n{p}", fontsize=6, rotation=0, ha='right', va='center')
            r += 1
    plt.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--attention', nargs='+', default=['block:16', 'full'], help="models to compare, e.g. block:16 full")
    p.add_argument('--steps', type=int, default=2000, help='denoiser steps of every model (batch 32)')
    p.add_argument('--n-layer', type=int, default=2, help='denoiser depth (width 128)')
    p.add_argument('--tokenizer-steps', type=int, default=1500)
    p.add_argument('--grid-rope', action='store_true', help="RoPE over each code's row and column too "
                   '(ClipRecipe.grid_rope=True; default: 1-D RoPE)')
    p.add_argument('--n-caption', type=int, default=200, help='held-out clips to caption')
    p.add_argument('--reps', type=int, default=3, help='timing runs per sampler')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=0, help='torch.set_num_threads (0: torch default)')
    p.add_argument('--work', default=None, help='folder for the trained pipelines (default: a temporary one); a '
                   'pipeline already saved there (WORK/block16, WORK/full) is measured, not retrained')
    p.add_argument('--out-dir', default=str(HERE / 'results'))
    a = p.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    from mmdiff.recipes import ClipRecipe, train_clips, evaluate_clips
    from mmdiff.pipeline import MMDiff
    from mmdiff.evaluate import train_digit_classifier
    from mmdiff.data import digits
    from mmdiff.video import clip_scores, digit_clips, DIRECTIONS
    names = list(DIRECTIONS)
    work = Path(a.work or tempfile.mkdtemp(prefix='mmdiff_video_'))
    t_start = time.perf_counter()
    clf = train_digit_classifier(*digits('train'))
    base = ClipRecipe(steps=a.steps, tokenizer_steps=a.tokenizer_steps, n_layer=a.n_layer, seed=a.seed,
                      grid_rope=a.grid_rope)
    real, ra, _ = digit_clips(200, 'test', a.seed + 1, base.clip)
    ceiling = clip_scores(clf, real, [x['label'] for x in ra], [x['direction'] for x in ra])
    res, tok, pngrows = dict(models=[]), None, []
    for att in a.attention:
        r, folder = base.replace(attention=att), work / att.replace(':', '')
        t0 = time.perf_counter()
        if (folder / 'run.json').exists():                                              # trained before: measure it
            pipe, r = MMDiff.from_pretrained(folder), ClipRecipe.load(folder / 'recipe.json')
            pipe.run = json.loads((folder / 'run.json').read_text())
        else:
            pipe = train_clips(folder, r, tokenizer=tok, progress=False)
        wall = time.perf_counter() - t0
        if tok is None:
            tok, tok_s, psnr = pipe.tokenizer, pipe.run['tokenizer_s'], pipe.run['tokenizer_psnr']
            base = r.replace(attention=base.attention)
        ev = evaluate_clips(pipe, r, clf, seed=a.seed, n_caption=a.n_caption)
        ev['n_caption'] = a.n_caption
        prompts = [f'a {d} moving {m}' for d, m in [(3, 'up'), (7, 'down and to the right'), (0, 'left'), (5, 'right')]]
        blockwise = att != 'full'
        ms = {c: 1000 * timing(pipe, prompts * 4, a.reps, c) for c in ((True, False) if blockwise else (None,))}
        row = dict(attention=att, grid_rope=r.grid_rope, params=pipe.run['params'], seq_len=pipe.run['seq_len'],
                   steps=pipe.run['steps'], train_s=pipe.run['train_s'], wall_s=wall, note=pipe.run.get('note'),
                   timing_ms_per_clip={str(k): v for k, v in ms.items()},
                   **{k: v for k, v in ev.items() if k not in ('clips', 'long_clips')})
        res['models'].append(row)
        pick = [3 * 8 + 0, 7 * 8 + 7, 0 * 8 + 2, 5 * 8 + 3, 8 * 8 + 4, 1 * 8 + 5]           # prompt k: digit k // 8
        pngrows.append((att, ev['clips'][pick], [f"{k // 8} {names[k % 8]}" for k in pick]))  # direction k % 8
        print({k: v for k, v in row.items() if k not in ('captions',)}, flush=True)
    res.update(tokenizer_s=tok_s, tokenizer_psnr=psnr, judge_on_real_clips=ceiling, recipe=base.to_dict(),
               total_s=time.perf_counter() - t_start, command=command_line(), **machine_info(torch.device('cpu')))
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sample_png(pngrows, out / 'video_bench_samples.png')
    res['samples_png'] = 'video_bench_samples.png'
    write_results(out, 'video_bench', res, table(res))


def pct(x) -> str: return f"{100 * x:.1f}"


def table(res: dict) -> str:
    ms = res['models']
    T = len(ms[0]['t2v_content_per_frame'])
    tok_s = '–' if res['tokenizer_s'] is None else round(res['tokenizer_s'])
    full = next((m for m in ms if m['attention'] == 'full'), None)
    L = [f"# Video: frame by frame (block-wise, exact cache) vs all frames at once (full attention)", '',
         f"`{res['command']}` — {res['date']}, {res['cpu']}, {res['torch_threads']} torch threads, "
         f"{res['total_s'] / 60:.1f} min in all. Frame tokenizer: {res['recipe']['tokenizer_steps']} steps, "
         f"{tok_s} s, PSNR {res['tokenizer_psnr']:.1f} dB on training frames, the same for every model. "
         f"The judge on 200 real held-out clips: content {pct(res['judge_on_real_clips']['content'])} %, motion "
         f"{pct(res['judge_on_real_clips']['motion'])} % (its ceiling).", '',
         'Text-to-video on the 80 (digit, direction) prompts, 8 MaskGIT steps a frame with guidance (equal NFE); '
         f"captions of {ms[0].get('n_caption', 'the')} held-out clips; *motion from a real frame 0*: the same clips "
         "continued from their real first frame under their own caption, the direction of the first generated step "
         "(the shift of a frame, without the placement of a first one).", '',
         '| attention | RoPE | params | steps | train s | content per frame (%) | motion % | motion from a real '
         'frame 0 % | consistent % | caption digit / direction / both (%) | ms / clip |',
         '|---|---|---|---|---|---|---|---|---|---|---|']
    for m in ms:
        per = ' / '.join(pct(x) for x in m['t2v_content_per_frame'])
        t = m['timing_ms_per_clip']
        speed = (f"{t['True']:.1f} (cache), {t['False']:.1f} (no cache)" if 'True' in t else f"{t['None']:.1f}")
        train = '–' if m['train_s'] is None else f"{m['train_s']:.0f}"
        rope = 'frame grid' if m.get('grid_rope') else '1-D'
        cont = pct(m['continue_motion']) if 'continue_motion' in m else '–'
        L.append(f"| {m['attention']} | {rope} | {m['params'] / 1e6:.2f} M | {m['steps']} | {train} | {per} | "
                 f"{pct(m['t2v_motion'])} | {cont} | {pct(m['t2v_consistency'])} | {pct(m['caption_content'])} / "
                 f"{pct(m['caption_motion'])} / {pct(m['caption_both'])} | {speed} |")
    if full is not None:
        for m in ms:
            if m is not full and 'True' in m['timing_ms_per_clip']:
                ratio = full['timing_ms_per_clip']['None'] / m['timing_ms_per_clip']['True']
                L += ['', f"Speed at equal NFE, {m['attention']} with the cache vs full attention: {ratio:.2f}× "
                      "(16 clips a batch, median of the runs)."]
    if any(m.get('note') for m in ms):
        L += ['', "These models were trained before this run, in `--work` (two one-thread runs side by side on the "
              "2-core machine, so *train s* compares poorly); this run measured them. Their run summaries: " +
              ms[0]['note'] + '.']
    L += ['', f"Longer than trained: frames 1–{2 * T} (the model holds {T}), each frame after the first {T} generated "
          f"after the last {T - 1} (sliding window); content per frame (%):", '',
          '| attention | ' + ' | '.join(str(t + 1) for t in range(2 * T)) + ' | consistent % |',
          '|---|' + '---|' * (2 * T + 1)]
    for m in ms:
        if 'long_content_per_frame' in m:
            L.append(f"| {m['attention']} | " + ' | '.join(pct(x) for x in m['long_content_per_frame']) +
                     f" | {pct(m['long_consistency'])} |")
    L += ['', f"Samples: `{res['samples_png']}`.", '']
    return '\n'.join(L)


if __name__ == '__main__':
    main()
