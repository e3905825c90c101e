#!/usr/bin/env python
"""GPU benchmark for mmdiff: training throughput and MFU of a ~100M-parameter denoiser (masked diffusion with full
attention, and block diffusion with FlexAttention), and sampling throughput (LLaDA sampler, block sampler with KV cache,
autoregressive decoding with KV cache) at the same model size.

    python benchmarks/bench_gpu.py                  # GPU: the ~100M profile, bf16 autocast (minutes)
    python benchmarks/bench_gpu.py --compile        # the same through torch.compile (fused kernels; adds compile time to warm-up)
    python benchmarks/bench_gpu.py --quick          # tiny profile (the default on CPU): a smoke test, < 1 min on a 2-core CPU

Model FLOPs (PaLM appendix B convention: matmul FLOPs only, forward + backward = 3 x forward, no recomputation):

    FLOPs per training sequence = 6·N_body·T + 6·N_head·n + 12·n_layer·d_model·P

N_body = non-embedding parameters without the LM head, T = tokens through the transformer (n for full attention, 2n for
block diffusion, which reads x_t ⊕ x_0), N_head = vocab·d_model (logits are computed for the n tokens only), P = attended
(query, key) pairs per sequence and layer: n² for full attention, n² + n·b for block diffusion with blocks of b (the
BD3-LM mask allows a quarter of the dense (2n)² pairs, and FlexAttention skips the rest). For full attention this is the
familiar 6·N + 12·n_layer·d_model·n per token. MFU = (FLOPs per step / step time) / peak, the peak being the GPU's dense
bf16 tensor-core rate (table `PEAK_BF16_TFLOPS`, or --peak-tflops). Without a known peak (a CPU) MFU prints as n/a.

A third training row runs `mmdiff train`'s own path at the same model shape: a generated text corpus written as .txt
files, checked, BPE-tokenized once into memory-mapped token files (`mmdiff.sources`), read by `TokenWindows` through the
Trainer's DataLoader (`--workers` processes) and trained by `mmdiff.train.Trainer` under Accelerate (bf16 mixed precision
on a GPU, `--compile` as above); its throughput is measured between the end of warm-up and the last step, and its ratio
to the fixed-batch row is the cost of the real data path.

Sampling uses random weights: speed does not depend on what the model learned (no EOS stop, one token per step).
"""
from __future__ import annotations
import argparse, gc, json, os, shlex, statistics, tempfile, time
from pathlib import Path

import torch

from common import sync, machine_info, command_line, apply_profile
from bench_data import write_corpus
from mmdiff.core import seed_everything, get_device, atomic_write_text
from mmdiff.model import Denoiser, ModelConfig, Causal, BlockDiff, block_diff_mask
from mmdiff.loss import MaskedDiffusion
from mmdiff.block import BlockDiffusion, generate_block
from mmdiff.sample import generate, generate_ar

HERE = Path(__file__).resolve().parent

# Defaults of the full run (a GPU) and of --quick (the default on a CPU); a flag given on the command line wins over both.
FULL = dict(d_model=768, n_layer=12, n_head=12, vocab_size=32768, seq_len=1024, batch_size=16, block_size=16,
            warmup=5, steps=20, prompt_len=64, gen_tokens=256, sample_batch=8)
QUICK = dict(d_model=64, n_layer=2, n_head=2, vocab_size=512, seq_len=64, batch_size=8, block_size=8,
             warmup=3, steps=10, prompt_len=8, gen_tokens=64, sample_batch=4)

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s from the vendors' data sheets; the first matching name wins.
PEAK_BF16_TFLOPS = (('H100 PCIe', 756.0), ('H100 NVL', 835.0), ('H100', 989.0), ('H200', 989.0), ('GH200', 989.0),
                    ('H800', 989.0), ('B200', 2250.0), ('A100', 312.0), ('A800', 312.0), ('L40S', 362.0), ('L4', 121.0),
                    ('A10G', 70.0), ('A10', 125.0), ('RTX 4090', 165.0), ('RTX 3090', 71.0))


def peak_tflops(dev: torch.device, override: float | None = None) -> tuple[float | None, str]:
    "The bf16 dense peak (TFLOP/s) of `dev` and where it came from: `override`, the table by GPU name, or None (CPU / unknown GPU)."
    if override: return float(override), '--peak-tflops'
    if dev.type != 'cuda': return None, f'no peak known for {dev.type} (give --peak-tflops)'
    name = torch.cuda.get_device_name(dev)
    for key, tf in PEAK_BF16_TFLOPS:
        if key.lower() in name.lower(): return tf, f'{name}: {key} bf16 dense peak'
    return None, f'{name} is not in PEAK_BF16_TFLOPS (give --peak-tflops)'


def model_flops(cfg: ModelConfig, n: int, block_size: int | None = None) -> dict:
    """Training FLOPs of one sequence of n data tokens: 6·N_body·T + 6·N_head·n + 12·n_layer·d_model·P (see the module docstring).
    `block_size` None = full attention (T = n, P = n²); else block diffusion on x_t ⊕ x_0 (T = 2n, P = allowed pairs of the mask = n² + n·b)."""
    D, V = cfg.d_model, cfg.vocab_size
    per_layer = 4 * D * D + 3 * D * cfg.hidden + 2 * D                     # qkv + proj, SwiGLU w1 w2 w3, two RMSNorm weights
    n_body, n_head = cfg.n_layer * per_layer + D, V * D                     # + final norm; the untied head
    if block_size is None: T, P = n, n * n
    else: T, P = 2 * n, int(block_diff_mask(n, block_size).sum())
    parts = dict(dense=6 * n_body * T, head=6 * n_head * n, attention=12 * cfg.n_layer * D * P)
    per_seq = sum(parts.values())
    return dict(per_seq=per_seq, per_token=per_seq / n, tokens_through=T, attn_pairs=P, n_body=n_body, n_head=n_head, **parts)


def _free(dev):
    gc.collect()
    if dev.type == 'cuda': torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats(dev)

def _peak_gib(dev) -> float | None: return torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == 'cuda' else None

def _autocast(dev, bf16: bool): return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16)


def bench_train(model: Denoiser, objective, batch: dict, dev, steps: int, warmup: int, bf16: bool, compile: bool, seed: int = 0) -> dict:
    """Time `steps` optimizer steps (forward + backward + grad clip + AdamW, as `mmdiff.train.Trainer` does, without data
    loading) of `objective` on one fixed batch, after `warmup` untimed steps (they include torch.compile's compilation)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]; no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([dict(params=decay, weight_decay=0.1), dict(params=no_decay, weight_decay=0.0)], lr=1e-4, betas=(0.9, 0.95))
    fwd = torch.compile(model) if compile else model
    ids = batch['ids']
    if isinstance(model.attention, BlockDiff) and model._use_flex(ids.device):
        model._block_mask(ids.shape[1], ids.device)                         # build (and cache) the BlockMask outside the compiled graph
    gen = torch.Generator(device=dev)
    def step(i):
        gen.manual_seed(seed + i)
        with _autocast(dev, bf16): loss, _ = objective(fwd, batch, gen)      # the objective's .item() calls sync the GPU, as in training
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(); opt.zero_grad(set_to_none=True)
        return loss
    model.train()
    sync(dev); t0 = time.perf_counter()
    for i in range(warmup): step(i)
    sync(dev); warm = time.perf_counter() - t0
    times, t0 = [], time.perf_counter()
    for i in range(steps):
        s = time.perf_counter(); loss = step(warmup + i); sync(dev); times.append(time.perf_counter() - s)
    total = time.perf_counter() - t0
    return dict(steps=steps, warmup=warmup, warmup_s=warm, total_s=total, step_s=total / steps, median_step_s=statistics.median(times),
                last_loss=float(loss.detach()), peak_mem_gib=_peak_gib(dev))


def bench_data_path(a, dev, bf16: bool, work: Path) -> dict:
    """`mmdiff train`'s path at the benchmark's model shape: corpus files -> checks -> BPE -> token files -> TokenWindows ->
    DataLoader -> Trainer (Accelerate). Steady-state data tokens/s between the end of warm-up and the last step."""
    from mmdiff.run import resolve, train_text
    n, B = a.seq_len, a.batch_size
    corpus = work/'corpus'
    write_corpus(corpus, max(2_000_000, 6 * B * n * (a.warmup + a.steps)), 8, a.seed)   # bench_data's corpus
    layer = dict(text=[str(corpus)], out=str(work/'run'), seed=a.seed, resume=False,
                 data=dict(seq_len=n, n_text=max(257 + 1, a.vocab_size - 16), val_every=0, n_samples=0, tokenizer_sample_mb=8.0),
                 model=dict(d_model=a.d_model, n_layer=a.n_layer, n_head=a.n_head),
                 train=dict(max_steps=a.warmup + a.steps, batch_size=B, lr=1e-4, warmup_steps=1, eval_every=0, save_every=0,
                            mixed_precision='bf16' if bf16 else 'no', compile=a.compile, workers=a.workers, progress=False,
                            cpu=dev.type == 'cpu'))
    t0, threads = time.perf_counter(), os.environ.get('OMP_NUM_THREADS')
    os.environ['OMP_NUM_THREADS'] = str(torch.get_num_threads())             # the run keeps the other rows' thread count
    try: res = train_text(resolve(layer), progress=False)
    finally:
        if threads is None: os.environ.pop('OMP_NUM_THREADS')
        else: os.environ['OMP_NUM_THREADS'] = threads
    total = time.perf_counter() - t0
    m = [json.loads(l) for l in (work/'run'/'metrics.jsonl').read_text().splitlines()]
    at = lambda k: m[k]['step'] * B * n / m[k]['tok_per_s']                   # seconds since the first step began, after step k
    step_s = (at(-1) - at(a.warmup - 1)) / (len(m) - a.warmup)
    cfg = ModelConfig.load(work/'run'/'model.json')                              # the saved pipeline's model
    return dict(step_s=step_s, warmup_s=at(a.warmup - 1), total_s=total, vocab_size=cfg.vocab_size, cfg=cfg, last_loss=res['loss'],
                tokens_prepared=res['tokens_train'], peak_mem_gib=_peak_gib(dev), workers=a.workers)


@torch.no_grad()
def bench_sampler(fn, dev, tokens: int, repeats: int = 2) -> dict:
    "Best-of-`repeats` wall time of `fn()` (returning (ids, SampleStats)) after one warm-up call; `tokens` = generated tokens per call."
    fn(); best, st = float('inf'), None
    for _ in range(repeats):
        sync(dev); t0 = time.perf_counter(); _, st = fn(); sync(dev); best = min(best, time.perf_counter() - t0)
    return dict(nfe=st.nfe, s=best, tok_per_s=tokens / best, peak_mem_gib=_peak_gib(dev))


def markdown(res: dict) -> str:
    a, mi, pk = res['args'], res['machine'], res['peak']
    fmt_mem = lambda m: '—' if m is None else f"{m:.1f}"
    L = [f"# mmdiff GPU benchmark{' (tiny profile: a smoke test of the script, not a result)' if res['tiny'] else ''}", "",
         f"Command: `{res['command']}`", "",
         f"Machine: torch {mi['torch']} · device `{mi['device']}`{' (' + mi['gpu'] + ')' if 'gpu' in mi else ''} · CPU {mi['cpu']} "
         f"({mi.get('cpu_count', '?')} logical cores, load avg {mi.get('load_avg_1m_at_start', float('nan')):.2f} at start) · "
         f"torch threads {mi['torch_threads']} · {mi['date']} · total {res['total_s']:.0f} s", "",
         f"Model: d_model {a['d_model']}, n_layer {a['n_layer']}, n_head {a['n_head']}, vocab {a['vocab_size']}: "
         f"{res['params'] / 1e6:.3g} M parameters, {res['params_nonemb'] / 1e6:.3g} M without the token/modality embeddings "
         f"(of which the LM head {res['flops_full']['n_head'] / 1e6:.3g} M). Precision: {res['precision']}; "
         f"{'torch.compile' if a['compile'] else 'eager (no torch.compile)'}; attention: SDPA (full), "
         f"{'FlexAttention' if res['flex'] else 'dense-mask SDPA'} (block diffusion x_t ⊕ x_0).", "",
         f"## Training throughput (batch {a['batch_size']} × {a['seq_len']} tokens, {a['steps']} timed steps after {a['warmup']} warm-up steps)", "",
         "| objective | tokens / step (data · through model) | GFLOP / data token | step ms | data tokens/s | model TFLOP/s | MFU | peak mem GiB | warm-up s |",
         "|---|---|---|---|---|---|---|---|---|"]
    for r in res['train']:
        mfu = 'n/a' if r['mfu'] is None else f"{r['mfu']:.1%}"
        if r.get('data_path'): r = dict(r, name=f"{r['name']} (vocab {r['vocab_size']:,})")
        L.append(f"| {r['name']} | {r['data_tokens']:,} · {r['model_tokens']:,} | {r['flops']['per_token'] / 1e9:.3g} | {r['step_s'] * 1e3:.1f} | "
                 f"{r['tok_per_s']:,.0f} | {r['tflops']:.3g} | {mfu} | {fmt_mem(r['peak_mem_gib'])} | {r['warmup_s']:.1f} |")
    dp = [r for r in res['train'] if r.get('data_path')]
    if dp: L += ["", f"Through `mmdiff train`'s data path the same model trains at **{dp[0]['ratio']:.3f}×** the fixed-batch row's data "
                 f"tokens/s ({dp[0]['workers']} DataLoader worker(s), {dp[0]['tokens_prepared']:,} tokens prepared from a generated "
                 f"corpus in {dp[0]['total_s']:.0f} s of run in all: checks, BPE, token files, training, saving). Its vocabulary is "
                 "the BPE's, so its FLOPs per token use that vocabulary's head."]
    L += ["", f"Peak for MFU: {pk['source']}" + (f" = {pk['tflops']:g} TFLOP/s." if pk['tflops'] else '.'), "",
          "Model FLOPs per training sequence of n data tokens: **6·N_body·T + 6·N_head·n + 12·n_layer·d_model·P**, with N_body the "
          "non-embedding parameters without the LM head, N_head = vocab·d_model, T the tokens through the transformer (n for full "
          "attention; 2n for block diffusion, which reads x_t ⊕ x_0 and computes logits for the noisy half only) and P the attended "
          "(query, key) pairs per layer (n² for full attention; n² + n·b for the block-diffusion mask with blocks of b, a quarter of "
          "the dense (2n)²). Matmuls only, backward = 2 × forward, no activation recomputation counted. Data tokens/s counts the n "
          "tokens of each training sequence. One step = forward + backward + grad-norm clip + AdamW on a fixed random batch "
          "(no data loading); the objectives' `.item()` logging syncs the device every step, as in `Trainer`.", "",
          f"## Sampling throughput (batch {a['sample_batch']}, prompt {a['prompt_len']} tokens, {a['gen_tokens']} generated tokens, "
          f"temperature 0, one token per step, no EOS stop)", "",
          "| sampler | NFE | seconds | generated tokens/s | peak mem GiB |", "|---|---|---|---|---|"]
    for r in res['sample']:
        L.append(f"| {r['name']} | {r['nfe']} | {r['s']:.3f} | {r['tok_per_s']:,.0f} | {fmt_mem(r['peak_mem_gib'])} |")
    L += ["", "Random weights (speed does not depend on what the model learned); the same model size for every row; sampling runs "
          f"eagerly{' under bf16 autocast' if res['precision'] == 'bf16 autocast' else ''} (no torch.compile: its shapes change every step). "
          "Best of 2 runs after a warm-up run."]
    return '\n'.join(L) + '\n'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Outputs: <out-dir>/gpu_bench.md and .json on a GPU (full profile), gpu_bench_cpu_tiny.md/.json "
                                       "for the tiny profile on a CPU (gpu_bench_<device>[_tiny] otherwise).")
    p.add_argument('--quick', action='store_true', help='tiny profile (the default on a CPU)')
    p.add_argument('--full', action='store_true', help='the ~100M profile even on a CPU (slow)')
    for k in FULL: p.add_argument('--' + k.replace('_', '-'), type=int, default=None, help=f"default {FULL[k]} / quick {QUICK[k]}")
    p.add_argument('--workers', type=int, default=2, help="DataLoader workers of the mmdiff train row")
    p.add_argument('--no-data-path', action='store_true', help="skip the mmdiff train row")
    p.add_argument('--compile', action='store_true', help='train through torch.compile (warm-up steps include compilation)')
    p.add_argument('--precision', choices=('auto', 'bf16', 'fp32'), default='auto', help='auto: bf16 autocast on CUDA, fp32 elsewhere')
    p.add_argument('--peak-tflops', type=float, default=None, help='peak FLOP/s of the device in TFLOP/s for MFU (default: from the GPU name)')
    p.add_argument('--device', default=None, help='cpu, cuda, ... (default: cuda if available)')
    p.add_argument('--threads', type=int, default=0, help='torch.set_num_threads (0: torch default)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out-dir', default=str(HERE / 'results'))
    a = p.parse_args(argv)
    dev = get_device(a.device)
    a.tiny = a.quick or (dev.type != 'cuda' and not a.full)
    return apply_profile(a, QUICK if a.tiny else FULL), dev


def main(argv=None, show: bool = True) -> dict:
    "Run the benchmark (`argv`: the command-line flags; `show`: print the table) and return every number; writes the .md and .json."
    a, dev = parse_args(argv)
    command = command_line() if argv is None else 'python benchmarks/bench_gpu.py ' + shlex.join(argv)   # called from Python: name the script
    if a.threads: torch.set_num_threads(a.threads)
    T0, mi = time.perf_counter(), machine_info(dev)
    bf16 = a.precision == 'bf16' or (a.precision == 'auto' and dev.type == 'cuda')
    if dev.type == 'cuda': torch.backends.cuda.matmul.allow_tf32 = True; torch.backends.cudnn.allow_tf32 = True
    peak, peak_src = peak_tflops(dev, a.peak_tflops)
    print(f"mmdiff GPU benchmark ({'tiny' if a.tiny else 'full'} profile): torch {mi['torch']}, device {dev}"
          f"{' (' + mi['gpu'] + ')' if 'gpu' in mi else ''}, {'bf16 autocast' if bf16 else 'fp32'}, "
          f"{'compiled' if a.compile else 'eager'}, peak {peak_src}", flush=True)
    n, B, bs, V = a.seq_len, a.batch_size, a.block_size, a.vocab_size
    if n % bs: raise ValueError(f"block_size={bs} does not divide seq_len={n}")
    M = V - 1                                                               # [MASK] = the last id
    cfg = ModelConfig(vocab_size=V, max_len=max(n, a.prompt_len + a.gen_tokens), d_model=a.d_model, n_layer=a.n_layer, n_head=a.n_head)
    def model(att=None):
        seed_everything(a.seed); return Denoiser(cfg, att).to(dev)
    g = torch.Generator().manual_seed(a.seed)
    batch = dict(ids=torch.randint(0, M, (B, n), generator=g).to(dev), prompt=torch.zeros(B, n, dtype=torch.bool, device=dev))

    # ---- training: masked diffusion (full attention, SDPA) and block diffusion (x_t ⊕ x_0, FlexAttention on a GPU)
    train, flex = [], False
    for name, att, obj, blk in [('masked diffusion (LLaDA), full attention', None, MaskedDiffusion(M, per_answer=False), None),
                                (f'block diffusion (BD3-LM), b = {bs}', BlockDiff(bs), BlockDiffusion(M, bs, per_answer=False), bs)]:
        _free(dev); m = model(att)
        if blk is None:
            params, params_nonemb = m.num_params(), m.num_params(embeddings=False)
            fl = model_flops(cfg, n)
            if fl['n_body'] + fl['n_head'] != params_nonemb: raise RuntimeError(f"model_flops counts {fl['n_body'] + fl['n_head']:,} non-embedding parameters, the model has {params_nonemb:,}")
        else: flex = m._use_flex(batch['ids'].device)
        print(f"[train] {name}: {a.warmup} warm-up + {a.steps} timed steps", flush=True)
        r = bench_train(m, obj, batch, dev, a.steps, a.warmup, bf16, a.compile, a.seed)
        fl = model_flops(cfg, n, blk)
        tflops = B * fl['per_seq'] / r['step_s'] / 1e12
        r.update(name=name, flops=fl, data_tokens=B * n, model_tokens=B * fl['tokens_through'], tok_per_s=B * n / r['step_s'],
                 tflops=tflops, mfu=tflops / peak if peak else None)
        print(f"  {r['step_s'] * 1e3:.1f} ms/step, {r['tok_per_s']:,.0f} data tokens/s, {tflops:.3g} model TFLOP/s, MFU "
              f"{'n/a' if r['mfu'] is None else format(r['mfu'], '.1%')}, warm-up {r['warmup_s']:.1f} s", flush=True)
        train.append(r)
        del m

    # ---- the same model through mmdiff train's data path (prepared token files -> DataLoader -> Trainer)
    if not a.no_data_path:
        _free(dev)
        print(f"[train] masked diffusion through mmdiff train's data path: {a.warmup} warm-up + {a.steps} timed steps", flush=True)
        with tempfile.TemporaryDirectory(prefix='mmdiff_gpu_bench_') as work: r = bench_data_path(a, dev, bf16, Path(work))
        fl = model_flops(r.pop('cfg'), n)
        tflops = B * fl['per_seq'] / r['step_s'] / 1e12
        r.update(name="masked diffusion through mmdiff train's data path", data_path=True, flops=fl, data_tokens=B * n,
                 model_tokens=B * n, tok_per_s=B * n / r['step_s'], tflops=tflops, mfu=tflops / peak if peak else None)
        r['ratio'] = r['tok_per_s'] / train[0]['tok_per_s']
        print(f"  {r['step_s'] * 1e3:.1f} ms/step, {r['tok_per_s']:,.0f} data tokens/s ({r['ratio']:.3f}x the fixed batch), "
              f"MFU {'n/a' if r['mfu'] is None else format(r['mfu'], '.1%')}", flush=True)
        train.append(r)

    # ---- sampling at the same size, random weights
    G, Bs = a.gen_tokens, a.sample_batch
    prompt = torch.randint(0, M, (Bs, a.prompt_len), generator=g).to(dev)
    sample = []
    for name, att, fn in [(f'LLaDA sampler (full attention, blocks of {bs}, no cache)', None,
                           lambda m: generate(m, prompt, steps=G, gen_length=G, block_length=bs, mask_id=M, return_stats=True)),
                          (f'block sampler (BlockDiff b = {bs}, KV cache)', BlockDiff(bs),
                           lambda m: generate_block(m, prompt, G, mask_id=M, use_cache=True, return_stats=True)),
                          ('autoregressive (Causal, KV cache)', Causal(),
                           lambda m: generate_ar(m, prompt, G, use_cache=True, return_stats=True))]:
        _free(dev); m = model(att).eval()
        print(f"[sample] {name}", flush=True)
        with _autocast(dev, bf16): r = bench_sampler(lambda: fn(m), dev, Bs * G)
        r['name'] = name; sample.append(r)
        print(f"  {r['nfe']} NFE, {r['s']:.3f} s, {r['tok_per_s']:,.0f} tokens/s", flush=True)
        del m

    res = dict(command=command, machine=mi, args=vars(a), tiny=a.tiny, precision='bf16 autocast' if bf16 else 'fp32', flex=flex,
               params=params, params_nonemb=params_nonemb, flops_full=model_flops(cfg, n), peak=dict(tflops=peak, source=peak_src),
               flops_formula='6*N_body*T + 6*N_head*n + 12*n_layer*d_model*P per training sequence', train=train, sample=sample)
    res['total_s'] = time.perf_counter() - T0
    md = markdown(res)
    stem = 'gpu_bench' + ('' if dev.type == 'cuda' else f'_{dev.type}') + ('_tiny' if a.tiny else '')
    out = Path(a.out_dir)
    atomic_write_text(out / f'{stem}.md', md)
    atomic_write_text(out / f'{stem}.json', json.dumps(res, indent=2, default=str))
    for f in (f'{stem}.md', f'{stem}.json'): (out / f).chmod(0o644)
    if show: print('\n' + md, flush=True)
    print(f"written {out / (stem + '.md')} and {out / (stem + '.json')}", flush=True)
    res.update(markdown=md, files=[str(out / f'{stem}.md'), str(out / f'{stem}.json')])
    return res


if __name__ == '__main__': main()
