#!/usr/bin/env python
"""Block-diffusion benchmark for mmdiff: held-out likelihood of AR, block-4, block-16 and full-attention models of the same
size trained on the same token budget; block sampling with vs without the KV cache; Fast-dLLM threshold decoding (NFE vs
accuracy on reversal); decoding tokens/s against an autoregressive model with a KV cache.

All measurements run in one process, one after the other, on one machine, so the ratios between rows are meaningful;
absolute numbers depend on the machine and on what else runs on it. Nothing is asserted except that cached and uncached
sampling return the same tokens (printed, and recorded in the table).

    python benchmarks/bench_block.py --quick     # ~1-2 min smoke test with a tiny model (writes block_bench_quick.*)
    python benchmarks/bench_block.py             # the full benchmark (tens of minutes on a 2-core CPU; minutes on a GPU)
    python benchmarks/bench_block.py --replot    # only redraw block_bench_likelihood.png / block_bench_speed.png from block_bench.json
"""
from __future__ import annotations
import argparse, json, tempfile, time
from pathlib import Path

import torch

from common import sync, apply_profile, add_run_flags, start_run
from mmdiff.core import seed_everything, atomic_write_text, atomic_write_bytes
from mmdiff.model import Denoiser, ModelConfig, Causal, BlockDiff
from mmdiff.loss import MaskedDiffusion, Autoregressive
from mmdiff.block import BlockDiffusion, block_nelbo, generate_block
from mmdiff.sample import generate, generate_ar
from mmdiff.train import Trainer, TrainConfig
from mmdiff.recipes import TextDataConfig, build_text_data
from mmdiff.data import LMDataset, TaskDataset, Reversal, shakespeare
from mmdiff.evaluate import nelbo, ar_nll

HERE = Path(__file__).resolve().parent

FULL = dict(d_model=128, n_layer=4, n_head=4, seq_len=64, task_seq_len=32, batch_size=32, steps=1500, task_steps=1500,
            n_val=256, n_t=8, n_eval=200, gen_tokens=256, sample_batch=8, sample_block=16, n_text=1024)
QUICK = dict(d_model=32, n_layer=2, n_head=2, seq_len=32, task_seq_len=32, batch_size=16, steps=30, task_steps=30,
             n_val=32, n_t=2, n_eval=20, gen_tokens=256, sample_batch=2, sample_block=16, n_text=1024)
THRESHOLDS = (None, 0.95, 0.9, 0.7, 0.5)



def timed(fn, dev, repeats: int = 1):
    "Best-of-`repeats` wall time of `fn()` after one warm-up call; returns (result, seconds)."
    fn(); best, out = float('inf'), None
    for _ in range(repeats):
        sync(dev); t0 = time.perf_counter(); out = fn(); sync(dev); best = min(best, time.perf_counter() - t0)
    return out, best

def train(model, objective, ds, a, dev, steps, label) -> tuple[torch.nn.Module, dict]:
    "Train for exactly `steps` steps of `batch_size` sequences (the same token budget for every model)."
    with tempfile.TemporaryDirectory(prefix='mmdiff_bbench_') as out:
        cfg = TrainConfig(out_dir=out, max_steps=steps, batch_size=a.batch_size, lr=a.lr, warmup_steps=min(100, steps // 10),
                          eval_every=0, seed=a.seed, progress=a.progress, cpu=dev.type == 'cpu')
        tr = Trainer(model, objective, ds, cfg)
        t0 = time.perf_counter(); hist = tr.fit(); wall = time.perf_counter() - t0
    last = [h['loss'] for h in hist[-max(1, len(hist) // 10):]]
    st = dict(steps=len(hist), wall_s=wall, train_loss_last10pct=sum(last) / len(last), tokens=len(hist) * a.batch_size * len(ds[0]['ids']))
    print(f"  {label}: {st['steps']} steps in {wall:.0f} s, final train loss {st['train_loss_last10pct']:.3f}", flush=True)
    return tr.raw_model.eval(), st

def answer(vocab, ids) -> str:
    ids = ids.tolist()
    if vocab.eos_id in ids: ids = ids[:ids.index(vocab.eos_id)]
    return vocab.decode([i for i in ids if i != vocab.mask_id], skip_special=True).strip()

@torch.no_grad()
def threshold_accuracy(model, vocab, ds, n, threshold, block: bool, dev) -> dict:
    "Exact-match reversal accuracy and mean NFE per prompt group with the block sampler (block) or LLaDA's (full attention)."
    pairs = [ds.pair(i) for i in range(n)]
    enc = [[vocab.bos_id] + vocab.encode(p) for p, _ in pairs]
    right, nfe, groups, t0 = 0, 0, 0, time.perf_counter()
    for P in sorted({len(e) for e in enc}):
        idx = [k for k, e in enumerate(enc) if len(e) == P]
        prompt = torch.tensor([enc[k] for k in idx], device=dev)
        gen = ds.seq_len - P
        if block: out, st = generate_block(model, prompt, gen, threshold=threshold, eos_id=vocab.eos_id, mask_id=vocab.mask_id, return_stats=True)
        else: out, st = generate(model, prompt, gen, gen, gen, threshold=threshold, mask_id=vocab.mask_id, return_stats=True)
        right += sum(answer(vocab, row[P:]) == pairs[k][1].strip() for k, row in zip(idx, out))
        nfe += st.nfe * len(idx); groups += 1
    return dict(threshold=threshold, accuracy=right / n, nfe_per_answer=nfe / n, s=time.perf_counter() - t0)


def markdown(res: dict) -> str:
    a, mi = res['args'], res['machine']
    L = [f"# mmdiff block-diffusion benchmark{' (QUICK smoke test: tiny model, not a result)' if a['quick'] else ''}", "",
         f"Command: `{res['command']}`", "",
         f"Machine: torch {mi['torch']} · device `{mi['device']}`{' (' + mi['gpu'] + ')' if 'gpu' in mi else ''} · CPU {mi['cpu']} "
         f"({mi.get('cpu_count', '?')} logical cores, load avg {mi.get('load_avg_1m_at_start', float('nan')):.2f} at start) · "
         f"torch threads {mi['torch_threads']} · {mi['date']} · total {res['total_s']:.0f} s", "",
         f"Model: d_model {a['d_model']}, n_layer {a['n_layer']}, n_head {a['n_head']}, vocab {res['vocab_size']} "
         f"({res['params'] / 1e6:.3f} M parameters, the same for every row).", "",
         f"## Held-out likelihood (Shakespeare, held-out plays; same token budget: {a['steps']} steps × {a['batch_size']} windows × {a['seq_len']} tokens)", "",
         "| model | objective | held-out NLL / NELBO (nats/token) | ppl (bound) | train wall s | final train loss |", "|---|---|---|---|---|---|"]
    for r in res['likelihood']:
        v = f"{r['nll']:.3f} (exact)" if not r['bound'] else f"≤ {r['nll']:.3f} ± {r['stderr']:.3f}"
        p = f"{r['ppl']:.1f}" if not r['bound'] else f"≤ {r['ppl']:.1f}"
        L.append(f"| {r['model']} | {r['objective']} | {v} | {p} | {r['train']['wall_s']:.0f} | {r['train']['train_loss_last10pct']:.3f} |")
    L += ["", "Block models read x_t ⊕ x_0 (2 × seq_len tokens) per training sequence: the same tokens seen cost about twice the compute. "
          f"NELBO: Monte-Carlo over t ∈ [0, 1] ({a['n_t']} stratified times per block, log-linear schedule, ± one standard error); AR: exact NLL.", "",
          f"## Decoding speed ({a['gen_tokens']} generated tokens, batch {a['sample_batch']}, temperature 0, no EOS stop)", "",
          "| sampler | NFE | seconds | tokens/s | same tokens as uncached |", "|---|---|---|---|---|"]
    for r in res['speed']:
        same = '—' if r.get('same') is None else ('yes' if r['same'] else '**NO**')
        L.append(f"| {r['sampler']} | {r['nfe']} | {r['s']:.2f} | {r['tok_per_s']:,.0f} | {same} |")
    L += ["", f"KV-cache speed-up of the block sampler: **{res['cache_speedup']:.1f}×** (target ≥ 3×).", "",
          f"## Threshold decoding on reversal (held-out seeds, {a['n_eval']} examples, seq_len {a['task_seq_len']}, {a['task_steps']} training steps)", "",
          "| model / sampler | threshold | accuracy | NFE per answer | seconds |", "|---|---|---|---|---|"]
    for r in res['threshold']:
        L.append(f"| {r['model']} | {'one token per step' if r['threshold'] is None else r['threshold']} | {r['accuracy']:.1%} | {r['nfe_per_answer']:.1f} | {r['s']:.1f} |")
    return '\n'.join(L) + '\n'

def plots(res: dict, out: Path) -> list[Path]:
    "block_bench_likelihood.png (held-out NLL / NELBO with ± 1 s.e.) and block_bench_speed.png (decoding tokens/s per sampler)."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from io import BytesIO
    def save(fig, name):
        buf = BytesIO(); fig.tight_layout(); fig.savefig(buf, format='png', dpi=120); plt.close(fig)
        atomic_write_bytes(out / name, buf.getvalue()); (out / name).chmod(0o644); return out / name
    a, quick = res['args'], ' (QUICK smoke test)' if res['args'].get('quick') else ''
    lik = res['likelihood']
    fig, ax = plt.subplots(figsize=(6, 3.8))
    x = range(len(lik))
    bars = ax.bar(x, [r['nll'] for r in lik], yerr=[r['stderr'] for r in lik], capsize=5,
                  color=['tab:grey' if not r['bound'] else 'tab:blue' for r in lik], edgecolor='k', lw=.5)
    for b, r in zip(bars, lik):
        ax.annotate(f"{'≤ ' if r['bound'] else ''}{r['nll']:.3f}" + (f"\n± {r['stderr']:.3f}" if r['bound'] else '\n(exact)'),
                    (b.get_x() + b.get_width() / 2, b.get_height() + r['stderr']), textcoords='offset points', xytext=(0, 3),
                    ha='center', fontsize=8)
    ax.set_xticks(list(x), [r['model'] for r in lik])
    lo = min(r['nll'] - r['stderr'] for r in lik)
    ax.set_ylim(max(0, lo - 0.5), max(r['nll'] + r['stderr'] for r in lik) + 0.45)
    ax.set(ylabel='nats / token (lower is better)',
           title=f"held-out Shakespeare: AR NLL (grey, exact) vs NELBO (blue, bound)\n{a['steps']} steps × {a['batch_size']} × {a['seq_len']} tokens, d_model {a['d_model']}{quick}")
    ax.title.set_fontsize(9); ax.grid(axis='y', alpha=.3)
    f1 = save(fig, stem(res['args']) + '_likelihood.png')
    sp = res['speed']
    import textwrap
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(sp) + 1.6))
    y = list(range(len(sp)))[::-1]
    col = [('silver' if 'no cache' in r['sampler'] else 'tab:grey') if r['sampler'].startswith('AR') else 'tab:green' if r['sampler'].startswith('full')
           else 'tab:orange' if 'no cache' in r['sampler'] else 'tab:blue' for r in sp]
    bars = ax.barh(y, [r['tok_per_s'] for r in sp], color=col, edgecolor='k', lw=.5)
    for b, r in zip(bars, sp): ax.annotate(f"{r['tok_per_s']:,.0f}  ({r['nfe']} NFE)", (b.get_width(), b.get_y() + b.get_height() / 2),
                                           textcoords='offset points', xytext=(3, 0), va='center', fontsize=8)
    ax.set_yticks(y, [textwrap.fill(r['sampler'], 38) for r in sp], fontsize=8)
    ax.set_xlim(0, max(r['tok_per_s'] for r in sp) * 1.35)
    ax.set(xlabel='generated tokens / s (higher is better)',
           title=f"decoding {a['gen_tokens']} tokens, batch {a['sample_batch']}, temperature 0, no EOS stop\n"
                 f"device {res['machine']['device']}, d_model {a['d_model']}, {a['n_layer']} layers{quick}")
    ax.title.set_fontsize(9); ax.grid(axis='x', alpha=.3)
    f2 = save(fig, stem(res['args']) + '_speed.png')
    return [f1, f2]

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Outputs: <out-dir>/block_bench.md, block_bench.json, block_bench_likelihood.png and block_bench_speed.png "
                                "(block_bench_quick.* with --quick).")
    p.add_argument('--quick', action='store_true', help='tiny model and 30 training steps: a smoke test of the script')
    for k in FULL: p.add_argument('--' + k.replace('_', '-'), type=int, default=None, help=f"default {FULL[k]} / quick {QUICK[k]}")
    p.add_argument('--lr', type=float, default=3e-3)
    add_run_flags(p, HERE / 'results')
    p.add_argument('--replot', action='store_true', help='only redraw the PNGs from <out-dir>/block_bench.json (no training)')
    a = p.parse_args(argv)
    return apply_profile(a, QUICK if a.quick else FULL)

def stem(a: dict) -> str:
    "Output file stem: a --quick smoke test never overwrites the results of a full run."
    return 'block_bench_quick' if a.get('quick') else 'block_bench'

def main(argv=None):
    a = parse_args(argv)
    if a.replot:
        out = Path(a.out_dir)
        for f in plots(json.loads((out / f'{stem(vars(a))}.json').read_text()), out): print(f"written {f}")
        return None
    command, T0, dev, mi = start_run(a, argv, 'block benchmark')
    vocab, lm_train, _ = build_text_data(TextDataConfig(n_text=a.n_text, seq_len=a.seq_len, tasks=''), a.seed)
    _, rev_train, _ = build_text_data(TextDataConfig(n_text=a.n_text, seq_len=a.task_seq_len, tasks='reversal', lm_fraction=0.0), a.seed, vocab=vocab)
    val_lm = LMDataset(vocab, list(shakespeare('val').values()), a.seq_len, a.n_val, seed=a.seed + 1)
    val_rev = TaskDataset(vocab, Reversal(), a.task_seq_len, a.n_eval, seed=a.seed + 10_000)
    max_len = max(a.seq_len, a.task_seq_len, 8 + a.gen_tokens)            # RoPE table long enough for the speed test
    def model(att=None):
        seed_everything(a.seed)
        return Denoiser(ModelConfig(vocab_size=vocab.vocab_size, max_len=max_len, d_model=a.d_model, n_layer=a.n_layer, n_head=a.n_head), att).to(dev)
    M = vocab.mask_id

    # ---- 1. likelihood at the same size and token budget
    print("[1] held-out likelihood", flush=True)
    lik, models = [], {}
    for name, att, obj, objective in [('AR (Causal)', Causal(), Autoregressive(), 'next-token CE'),
                                      ('block 4', BlockDiff(4), BlockDiffusion(M, 4), 'BD3-LM, b = 4'),
                                      ('block 16', BlockDiff(16), BlockDiffusion(M, 16), 'BD3-LM, b = 16'),
                                      ('full attention', None, MaskedDiffusion(M), 'LLaDA masked diffusion')]:
        m, st = train(model(att), obj, lm_train, a, dev, a.steps, name)
        if name.startswith('AR'): r = ar_nll(m, val_lm, n_seqs=a.n_val); row = dict(nll=r['nll'], stderr=0.0, ppl=r['ppl'], bound=False)
        else:
            r = (block_nelbo if name.startswith('block') else nelbo)(m, val_lm, M, n_seqs=a.n_val, n_t=a.n_t, seed=a.seed)
            row = dict(nll=r['nelbo'], stderr=r['stderr'], ppl=r['ppl_bound'], bound=True)
        print(f"  {name}: {'NLL' if not row['bound'] else 'NELBO'} {row['nll']:.3f}", flush=True)
        lik.append(dict(model=name, objective=objective, train=st, **row)); models[name] = m

    # ---- 2. decoding speed at gen_tokens tokens
    print(f"[2] decoding {a.gen_tokens} tokens", flush=True)
    prompt = torch.full((a.sample_batch, 1), vocab.bos_id, device=dev)
    bs = a.sample_block
    mb = models['block 16'] if bs == 16 else train(model(BlockDiff(bs)), BlockDiffusion(M, bs), lm_train, a, dev, a.steps, f'block {bs}')[0]
    G = a.gen_tokens
    speed = []
    (xc, sc), tc = timed(lambda: generate_block(mb, prompt, G, mask_id=M, return_stats=True), dev, repeats=2)
    (xn, sn), tn = timed(lambda: generate_block(mb, prompt, G, mask_id=M, use_cache=False, return_stats=True), dev, repeats=2)
    same = torch.equal(xc, xn)
    print(f"  block {bs}: cache {tc:.2f} s, no cache {tn:.2f} s ({tn / tc:.1f}×), same tokens: {same}", flush=True)
    tok = a.sample_batch * G
    speed += [dict(sampler=f'block {bs}, KV cache, 1 token/step', nfe=sc.nfe, s=tc, tok_per_s=tok / tc, same=same),
              dict(sampler=f'block {bs}, no cache, 1 token/step', nfe=sn.nfe, s=tn, tok_per_s=tok / tn, same=None)]
    for tau in (0.9, 0.5):
        (xt_, st_), tt = timed(lambda: generate_block(mb, prompt, G, mask_id=M, threshold=tau, return_stats=True), dev)
        (xu_, _), _ = timed(lambda: generate_block(mb, prompt, G, mask_id=M, threshold=tau, use_cache=False, return_stats=True), dev)
        speed.append(dict(sampler=f'block {bs}, KV cache, threshold {tau}', nfe=st_.nfe, s=tt,
                          tok_per_s=tok / tt, same=torch.equal(xt_, xu_)))
    ar = models['AR (Causal)']
    (ya, sa), ta = timed(lambda: generate_ar(ar, prompt, G, use_cache=True, return_stats=True), dev, repeats=2)
    (yn, _), tan = timed(lambda: generate_ar(ar, prompt, G, return_stats=True), dev)
    speed += [dict(sampler='AR, KV cache', nfe=sa.nfe, s=ta, tok_per_s=tok / ta, same=torch.equal(ya, yn)),
              dict(sampler='AR, no cache', nfe=sa.nfe, s=tan, tok_per_s=tok / tan, same=None)]
    fm = models['full attention']
    (_, sf), tf = timed(lambda: generate(fm, prompt, G, G, bs, mask_id=M, return_stats=True), dev)
    speed.append(dict(sampler=f'full attention, LLaDA sampler (blocks of {bs}, 1 token/step, no cache)', nfe=sf.nfe, s=tf, tok_per_s=tok / tf, same=None))
    for r in speed: print(f"  {r['sampler']}: {r['nfe']} NFE, {r['s']:.2f} s, {r['tok_per_s']:,.0f} tok/s", flush=True)

    # ---- 3. threshold decoding on reversal: NFE vs accuracy
    print("[3] threshold decoding on reversal", flush=True)
    thr = []
    for name, att, obj, block in [('block 4 / block sampler', BlockDiff(4), BlockDiffusion(M, 4), True),
                                  ('full attention / LLaDA sampler', None, MaskedDiffusion(M), False)]:
        m, _ = train(model(att), obj, rev_train, a, dev, a.task_steps, name)
        for tau in THRESHOLDS:
            r = threshold_accuracy(m, vocab, val_rev, a.n_eval, tau, block, dev)
            print(f"  {name}, threshold {tau}: acc {r['accuracy']:.1%}, NFE {r['nfe_per_answer']:.1f}", flush=True)
            thr.append(dict(model=name, **r))

    res = dict(command=command, machine=mi, args=vars(a), vocab_size=vocab.vocab_size, params=sum(p.numel() for p in ar.parameters()),
               likelihood=lik, speed=speed, cache_speedup=tn / tc, threshold=thr)
    res['total_s'] = time.perf_counter() - T0
    md = markdown(res)
    out = Path(a.out_dir)
    md_path, json_path = out / f'{stem(vars(a))}.md', out / f'{stem(vars(a))}.json'
    atomic_write_text(md_path, md)
    atomic_write_text(json_path, json.dumps(res, indent=2, default=str))
    for f in (md_path, json_path): f.chmod(0o644)
    pngs = plots(res, out)
    print('\n' + md + f"\nwritten {md_path}, {json_path}, " + ', '.join(p.name for p in pngs), flush=True)
    return res

if __name__ == '__main__': main()
