#!/usr/bin/env python
"""LLaDA-8B-shaped decoding speed on one GPU: `mmdiff.sample.generate` at gen_length 256 (prompt 128, blocks of 32)
with one token a step (the baseline), with the threshold rule, and with the dual cache + threshold rule; tokens/s and
peak memory.

The weights are random (no checkpoint is read), in bf16, on a `Denoiser` of LLaDA-8B's shape (d_model 4096, 32
layers, 32 heads, SwiGLU 12288, vocab 126464, RoPE base 5e5), built on the meta device and initialised on the GPU, so
no fp32 copy is ever made. With random weights every confidence is tiny, so the threshold rule commits one token a
step and the measured threshold rows show no gain from it: they measure what a step costs, not a commit schedule. The
speed at a real model's schedule is therefore *computed* from the measured step times and a stated number of tokens
committed per step (`--tokens-per-step`, or by default the rate the small trained model of `bench_fast_cache.py`
reached at the same threshold), and labelled as such. Fast-dLLM's published LLaDA-8B figure is printed beside it as
the reference point.

    python benchmarks/bench_llada_gpu.py           # on one GPU (well under 8 min; results/llada_gpu.md / .json)
    python benchmarks/bench_llada_gpu.py --tiny    # CPU smoke test of the script, seconds (llada_gpu_cpu_tiny.*)
"""
from __future__ import annotations
import argparse, json, math, time
from pathlib import Path

import torch
import torch.nn as nn

from common import write_results, sync, machine_info, command_line, apply_profile
from mmdiff.core import atomic_write_text
from mmdiff.model import Denoiser, ModelConfig, RMSNorm, SpanCache
from mmdiff.sample import generate, DualCache, PrefixCache

HERE = Path(__file__).resolve().parent
LLADA_8B = dict(vocab_size=126464, max_len=4096, d_model=4096, n_layer=32, n_head=32, mlp_hidden=12288,
                rope_theta=500000.0, n_modalities=0)
TINY = dict(vocab_size=1024, max_len=512, d_model=64, n_layer=2, n_head=4, mlp_hidden=128, rope_theta=500000.0,
            n_modalities=0)
LLADA_MASK_ID = 126336
FULL = dict(prompt_len=128, gen_length=256, block_length=32, repeats=5, dtype='bfloat16')     # Fast-dLLM's setting
TINY_RUN = dict(prompt_len=32, gen_length=64, block_length=16, repeats=2, dtype='float32')   # seconds on a CPU
FAST_DLLM = dict(baseline=6.7, fast=54.4, speedup=8.1,
                 what="Fast-dLLM's published figure for LLaDA-8B at generation length 256 on an A100 (real weights, "
                      "its own prompts; parallel decoding + dual cache against LLaDA's one token a step)")


def build(cfg: ModelConfig, dev, dtype) -> Denoiser:
    "A random `Denoiser` in `dtype` on `dev`: built on the meta device, cast there, then materialised and initialised."
    with torch.device('meta'): model = Denoiser(cfg)
    model = model.to(dtype).to_empty(device=dev)                            # no host copy, never fp32
    for m in model.modules():                                               # Denoiser's own initialisation, on `dev`
        if isinstance(m, RMSNorm): nn.init.ones_(m.weight)
        elif isinstance(m, (nn.Linear, nn.Embedding)): nn.init.normal_(m.weight, std=0.02)
    for name, p in model.named_parameters():                    # GPT-2: residual projections / sqrt(2 n_layer)
        if name.endswith(('proj.weight', 'w2.weight')): nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layer))
    model.init_rope(dev)
    return model.eval().requires_grad_(False)


class StepClock:
    """Sampler callback: the duration of every step (device synchronised) and whether it opened a block (the block of
    the first [MASK] changed: with a cache, that step was the refresh)."""
    def __init__(self, dev, P: int, b: int, mask_id: int):
        self.dev, self.P, self.b, self.mask_id = dev, P, b, mask_id
        self.t, self.dt, self.opened, self.blk = None, [], [], -1
        self.first = P                                                      # first [MASK] before the next step
    def start(self): sync(self.dev); self.t = time.perf_counter()
    def __call__(self, step, x):
        sync(self.dev); now = time.perf_counter(); self.dt.append(now - self.t); self.t = now
        blk = (self.first - self.P) // self.b
        self.opened.append(blk != self.blk); self.blk = blk
        m = (x[0] == self.mask_id).nonzero()
        self.first = int(m[0]) if len(m) else x.shape[1]


def median(xs): xs = sorted(xs); return xs[len(xs) // 2] if xs else float('nan')


def pass_time(fn, dev, repeats: int) -> float:
    "Median wall time of `fn()` over `repeats` calls after one warm-up."
    fn(); ts = []
    for _ in range(repeats):
        sync(dev); t0 = time.perf_counter(); fn(); sync(dev); ts.append(time.perf_counter() - t0)
    return median(ts)


def peak_gib(dev) -> float | None:
    return torch.cuda.max_memory_allocated(dev) / 2 ** 30 if dev.type == 'cuda' else None


def reset_peak(dev):
    if dev.type == 'cuda': torch.cuda.reset_peak_memory_stats(dev)


def schedule_rate(a) -> tuple[list[float], str]:
    "Tokens committed per step for the computed rows, and where the numbers come from."
    if a.tokens_per_step: return a.tokens_per_step, "given with --tokens-per-step"
    src, key = Path(a.schedule_from), f'threshold {a.threshold}'
    try:
        res = json.loads(src.read_text())
        rate, G, b = res['tokens_per_step'][key], res['args']['gen_length'], res['args']['block_length']
        capped = "; that is its whole block a step, so the rate was capped by the block" if rate >= b else ''
        return [round(rate, 2)], (
            f"{rate:.2f}, the exact sampler's tokens per step at {key} on the small trained model of "
            f"`bench_fast_cache.py` ({src.name}: {res['task']}, {G} generated positions including EOS padding, "
            f"blocks of {b}{capped})")
    except (OSError, KeyError, ValueError):
        return [2.0, 4.0], f"illustrative values ({src} has no {key!r} entry; give --tokens-per-step)"


def markdown(res: dict) -> str:
    a, mi = res['args'], res['machine']
    G, b = a['gen_length'], a['block_length']
    tiny = f" (TINY smoke test on {mi['device']}: not a result)" if a['tiny'] else ''
    gpu = f" ({mi['gpu']})" if 'gpu' in mi else ''
    L = [f"# LLaDA-8B-shaped decoding speed{tiny}", "",
         f"Command: `{res['command']}`", "",
         f"Machine: torch {mi['torch']} · device `{mi['device']}`{gpu} · CPU {mi['cpu']} · {mi['date']} · "
         f"total {res['total_s']:.0f} s (budget {a['budget_s']:.0f} s)", "",
         f"Model: `Denoiser` with random weights in {a['dtype']}, {res['params'] / 1e9:.3g} B parameters "
         f"({res['weights_gib']:.3g} GiB), config {res['config']}. Batch 1, prompt {a['prompt_len']} random tokens, "
         f"gen_length {G}, block_length {b} ({G // b} blocks), temperature 0, low-confidence remasking, "
         f"L = {a['prompt_len'] + G}.", "",
         f"One forward pass (median of {a['repeats']}): full sequence {1000 * res['pass_full_s']:.1f} ms, dual-cache "
         f"span of {b} positions {1000 * res['pass_span_s']:.1f} ms ({res['pass_full_s'] / res['pass_span_s']:.1f}× "
         "less).", "",
         "## Measured (random weights)", "",
         "Random weights are never confident, so every threshold run commits one token a step: these rows measure what "
         "a step costs with each sampler, not the gain of the threshold rule.", "",
         "| mode | steps = NFE | positions run | wall s | tokens/s | ms / step (median) | peak memory GiB |",
         "|---|---|---|---|---|---|---|"]
    for r in res['measured']:
        if r.get('skipped'):
            L.append(f"| {r['mode']} | skipped: {r['skipped']} | | | | | |"); continue
        pk = f"{r['peak_gib']:.1f}" if r['peak_gib'] is not None else 'n/a (CPU)'
        L.append(f"| {r['mode']} | {r['nfe']} | {r['tokens_run']:,} | {r['wall_s']:.2f} | {r['tokens_per_s']:.1f} | "
                 f"{r['ms_per_step']:.1f} | {pk} |")
    L += ["", "## Computed for a stated commit schedule (measured step times × steps)", "",
          f"Tokens committed per step: {res['schedule_source']}. A block of {b} then takes k = ⌈{b} / rate⌉ steps: "
          "exact threshold decoding costs k exact steps, dual cache + threshold one refresh step and k − 1 span steps "
          f"(median step times measured above: exact {1000 * res['t_exact_step']:.1f} ms, refresh "
          f"{1000 * res['t_refresh_step']:.1f} ms, span {1000 * res['t_span_step']:.1f} ms). This assumes the same "
          "rate in every block; a real model's rate varies from block to block.", "",
          "| mode | tokens / step (stated) | steps / block | tokens/s (computed) | × baseline (measured) |",
          "|---|---|---|---|---|"]
    for r in res['computed']:
        L.append(f"| {r['mode']} | {r['rate']:g} | {r['steps_per_block']} | {r['tokens_per_s']:.1f} | "
                 f"{r['speedup']:.1f}× |")
    f = FAST_DLLM
    L += ["", f"Reference point: {f['what']}: {f['baseline']} → {f['fast']} tokens/s ({f['speedup']}×). Not comparable "
          "in absolute terms (another GPU, real weights and prompts); the ratio is the point of comparison.", ""]
    if res['skipped']: L += [f"Skipped for time: {', '.join(res['skipped'])}.", ""]
    return '\n'.join(L)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--tiny', action='store_true', help='a tiny model of the same structure: a smoke test')
    p.add_argument('--device', default=None, help='cuda (default when available) or cpu (only with --tiny)')
    p.add_argument('--dtype', default=None, choices=['bfloat16', 'float16', 'float32'],
                   help="default bfloat16 / tiny float32")
    for k in ('prompt_len', 'gen_length', 'block_length', 'repeats'):
        p.add_argument('--' + k.replace('_', '-'), type=int, default=None,
                       help=f"default {FULL[k]} / tiny {TINY_RUN[k]}")
    p.add_argument('--threshold', type=float, default=0.9)
    p.add_argument('--tokens-per-step', type=float, nargs='*', default=None,
                   help='tokens committed per step for the computed rows (default: read from --schedule-from)')
    p.add_argument('--schedule-from', default=str(HERE / 'results' / 'fast_cache_bench.json'))
    p.add_argument('--budget-s', type=float, default=420, help='start no new mode once this much time has passed')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out-dir', default=str(HERE / 'results'))
    p.add_argument('--threads', type=int, default=0, help='torch.set_num_threads on a CPU (0: torch default)')
    a = p.parse_args(argv)
    a = apply_profile(a, TINY_RUN if a.tiny else FULL)
    if a.gen_length % a.block_length:
        p.error(f"--block-length {a.block_length} must divide --gen-length {a.gen_length}")
    return a


def main(argv=None):
    a = parse_args(argv)
    T0 = time.perf_counter()
    if a.threads: torch.set_num_threads(a.threads)
    dev = torch.device(a.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    if dev.type != 'cuda' and not a.tiny:
        raise SystemExit("the 8B shape needs a GPU (16 GiB of bf16 weights): run with --tiny on a CPU")
    torch.manual_seed(a.seed)
    cfg = ModelConfig(**(TINY if a.tiny else LLADA_8B))
    mask_id = cfg.vocab_size - 1 if a.tiny else LLADA_MASK_ID
    print(f"building {'a tiny' if a.tiny else 'an LLaDA-8B-shaped'} Denoiser in {a.dtype} on {dev}", flush=True)
    model = build(cfg, dev, getattr(torch, a.dtype))
    params = sum(p.numel() for p in model.parameters())
    weights_gib = sum(p.numel() * p.element_size() for p in model.parameters()) / 2 ** 30
    print(f"  {params / 1e9:.3g} B parameters, {weights_gib:.3g} GiB, built in {time.perf_counter() - T0:.1f} s",
          flush=True)
    g = torch.Generator().manual_seed(a.seed)
    prompt = torch.randint(0, mask_id, (1, a.prompt_len), generator=g).to(dev)   # (1, P), never [MASK]
    G, b, P = a.gen_length, a.block_length, a.prompt_len
    n_blocks = G // b

    x = torch.cat([prompt, torch.full((1, G), mask_id, device=dev)], 1)     # (1, L): the sequence at the first step
    sc = SpanCache(cfg.n_layer)
    model.forward_span(x, P, P + b, sc, refresh=True)
    t_full = pass_time(lambda: model(x), dev, a.repeats)
    t_span = pass_time(lambda: model.forward_span(x, P, P + b, sc), dev, a.repeats)
    print(f"  one pass: full {1000 * t_full:.1f} ms, dual-cache span {1000 * t_span:.1f} ms", flush=True)
    del sc
    generate(model, prompt, 2 * n_blocks, G, b, mask_id=mask_id, cache=DualCache())   # warm-up: refresh and span passes

    thr = a.threshold
    modes = [(f'baseline: one token a step (TopK, {G} steps), exact passes', dict(steps=G)),
             (f'threshold {thr}, exact passes', dict(steps=G, threshold=thr)),
             (f'dual cache + threshold {thr}', dict(steps=G, threshold=thr, cache=DualCache())),
             (f'dual cache, one token a step (TopK, {G} steps)', dict(steps=G, cache=DualCache())),
             (f'prefix cache + threshold {thr}', dict(steps=G, threshold=thr, cache=PrefixCache()))]
    measured, skipped, clocks, est = [], [], {}, None
    for name, kw in modes:
        left = a.budget_s - (time.perf_counter() - T0)
        if est is not None and est > left:                                  # the next run would not fit: say so
            measured.append(dict(mode=name, skipped=f'time budget ({left:.0f} s left, about {est:.0f} s needed)'))
            skipped.append(name); print(f"  skipped {name}: {left:.0f} s left", flush=True); continue
        reset_peak(dev)
        clock = StepClock(dev, P, b, mask_id); clock.start()
        sync(dev); t0 = time.perf_counter()
        out, st = generate(model, prompt, gen_length=G, block_length=b, mask_id=mask_id, callback=clock,
                           return_stats=True, **kw)
        sync(dev); wall = time.perf_counter() - t0
        assert not (out == mask_id).any()
        clocks[name], est = clock, 1.2 * wall
        r = dict(mode=name, nfe=st.nfe, steps=st.steps, tokens_run=st.tokens_run, wall_s=wall, tokens_per_s=G / wall,
                 ms_per_step=1000 * median(clock.dt), peak_gib=peak_gib(dev))
        measured.append(r)
        print(f"  {name}: {st.nfe} NFE, {st.tokens_run:,} positions, {wall:.2f} s, {G / wall:.1f} tokens/s"
              + (f", peak {r['peak_gib']:.1f} GiB" if r['peak_gib'] is not None else ''), flush=True)

    base = measured[0]
    t_exact = median((clocks.get(modes[1][0]) or clocks[modes[0][0]]).dt)
    dual = clocks.get(modes[2][0]) or clocks.get(modes[3][0])
    if dual is not None:                                    # refresh steps opened a block, span steps did not
        t_refresh = median([d for d, o in zip(dual.dt, dual.opened) if o])
        t_span_step = median([d for d, o in zip(dual.dt, dual.opened) if not o])
    else: t_refresh = t_span_step = float('nan')
    rates, source = schedule_rate(a)
    computed = []
    for rate in rates:
        k = math.ceil(b / rate)
        for name, block_s in ((f'threshold {thr}, exact passes', k * t_exact),
                              (f'dual cache + threshold {thr}', t_refresh + (k - 1) * t_span_step)):
            tps = b / block_s
            computed.append(dict(mode=name, rate=rate, steps_per_block=k, tokens_per_s=tps,
                                 speedup=tps / base['tokens_per_s']))
    res = dict(command=command_line(argv), machine=machine_info(dev), args=vars(a), config=str(cfg), params=params,
               weights_gib=weights_gib, pass_full_s=t_full, pass_span_s=t_span, measured=measured, computed=computed,
               t_exact_step=t_exact, t_refresh_step=t_refresh, t_span_step=t_span_step, schedule_source=source,
               fast_dllm_reference=FAST_DLLM, skipped=skipped)
    res['total_s'] = time.perf_counter() - T0
    stem = 'llada_gpu' if dev.type == 'cuda' and not a.tiny else f'llada_gpu_{dev.type}_tiny'   # never overwrites
    write_results(a.out_dir, stem, res, markdown(res))
    return res


if __name__ == '__main__': main()
