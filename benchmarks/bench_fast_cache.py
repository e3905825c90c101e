#!/usr/bin/env python
"""Fast-dLLM's approximate caches in LLaDA's sampler: how many token positions the network runs, how many answers
change, and what it costs in accuracy, for a full-attention masked-diffusion model trained here on a task it learns in a
few CPU minutes.

The default task is the reversal of `mmdiff demo --text` at a fixed, longer length (`mmdiff.data.Reversal(8, 8,
'abcdefgh')`): `<|bos|> reverse: a e h g e b c d =` -> ` d c b e g h e a` `<|eos|>`, so every prompt has the same length
and the 12 generated positions split into 3 blocks of 4 (8 letters, EOS, EOS padding). `--task addition` trains
fixed-width addition with carries instead (`FixedAddition`: `add: 0 4 7 + 3 9 0 =` -> ` 0 4 3 7`), where the commit
order matters more, but a model of this size does not learn it in this budget (0 % exact match after 800 steps of
3-digit operands). Every prompt is decoded by `mmdiff.sample.generate` at temperature 0 with `cache=None` (exact
passes), `PrefixCache()` and `DualCache()`, under TopK at one step per block, two tokens a step and one token a step,
and under the threshold rule, for the trained model and for earlier checkpoints of the same run (less sure of
themselves, so more sensitive to stale keys and values).

    python benchmarks/bench_fast_cache.py --quick     # smoke test, under a minute (writes fast_cache_bench.quick.*)
    python benchmarks/bench_fast_cache.py             # the full benchmark (~10 min on a 2-core CPU at 1 thread)
    python benchmarks/bench_fast_cache.py --replot    # only rewrite fast_cache_bench.md from fast_cache_bench.json
"""
from __future__ import annotations
import argparse, json, random, time
from dataclasses import dataclass
from pathlib import Path

import torch
from einops import rearrange
from torch.utils.data import ConcatDataset

from common import write_results, sync, apply_profile, add_run_flags, seen_prompts, start_run
from bench_block import answer
from bench_threshold import train_with_stops
from mmdiff.core import seed_everything, atomic_write_text
from mmdiff.model import Denoiser, ModelConfig
from mmdiff.loss import MaskedDiffusion
from mmdiff.sample import generate, PrefixCache, DualCache
from mmdiff.recipes import TextDataConfig, build_text_data
from mmdiff.data import Task, TaskDataset, Reversal

HERE = Path(__file__).resolve().parent

FULL = dict(d_model=128, n_layer=4, n_head=4, length=8, gen_length=12, block_length=4, batch_size=64, steps=1200,
            n_eval=500, eval_batch=250)
QUICK = dict(d_model=32, n_layer=2, n_head=2, length=3, gen_length=8, block_length=4, batch_size=32, steps=40,
             n_eval=50, eval_batch=50)
CHECKPOINTS = dict(full='300,600', quick='20')        # earlier training steps that are decoded too
ALPHABET = 'abcdefgh'                                  # reversal: the letters of `mmdiff demo --text`
THRESHOLDS = (0.9, 0.7)
SAMPLERS = {'exact': None, 'prefix cache': PrefixCache(), 'dual cache': DualCache()}


@dataclass
class FixedAddition(Task):
    "Add two `digits`-digit numbers, leading zeros kept: `'add: 0 4 7 + 3 9 0 ='` -> `' 0 4 3 7'` (digits + 1 digits)."
    digits: int = 4        # width of each operand
    name = 'fixed_addition'
    def sample(self, rng):
        d = self.digits
        a, b = rng.randrange(10 ** d), rng.randrange(10 ** d)
        sp = lambda n, w: ' '.join(str(n).zfill(w))
        return f'add: {sp(a, d)} + {sp(b, d)} =', ''.join(' ' + c for c in str(a + b).zfill(d + 1))


class RowCost:
    """Sampler callback: for each row and block, the passes in which the row committed a token of that block. A row
    decoded alone would need exactly those passes (every pass commits >= 1 token of a row that still has a [MASK] in
    the block), so they give what decoding one answer costs; the batch's own count (it runs until its slowest row is
    done) overstates it."""
    def __init__(self, x0: torch.Tensor, mask_id: int, P: int, block_length: int):
        self.mask_id, self.P, self.b = mask_id, P, block_length
        self.masked = x0 == mask_id                                          # (B, L)
        self.k = torch.zeros(x0.shape[0], (x0.shape[1] - P) // block_length, dtype=torch.long)   # (B, blocks)
    def __call__(self, step: int, x: torch.Tensor):
        m = x == self.mask_id
        new = (self.masked & ~m)[:, self.P:].cpu()                          # (B, G) committed at this step
        self.k += rearrange(new, 'b (n k) -> b n k', k=self.b).any(-1)
        self.masked = m
    def cost(self, sampler: str, L: int) -> tuple[torch.Tensor, torch.Tensor]:
        "(NFE, token positions run) per row (B,): a refresh of L positions opens each block, then the cache's spans."
        nfe = self.k.sum(-1)
        if sampler == 'exact': return nfe, nfe * L
        lo = self.P + self.b * torch.arange(self.k.shape[1])                  # (blocks,) first position of each block
        span = torch.full_like(lo, self.b) if sampler == 'dual cache' else L - lo
        return nfe, (L + (self.k - 1).clamp_min(0) * span).sum(-1)


def rules(a) -> list[dict]:
    "TopK at one step per block (every step a refresh), two tokens a step, one token a step; then the threshold rule."
    n = a.gen_length // a.block_length
    steps = sorted({n, a.gen_length // 2, a.gen_length} if a.block_length > 1 else {n})
    topk = [dict(rule=f'TopK, {s} steps', steps=s, threshold=None) for s in steps]
    return topk + [dict(rule=f'threshold {t}', steps=a.gen_length, threshold=t) for t in THRESHOLDS]


@torch.no_grad()
def decode(model, prompts: torch.Tensor, a, mask_id: int, rule: dict, sampler: str, dev) -> dict:
    "Decode all prompts (N, P) in batches of `eval_batch` -> generated ids (N, G) and the cost per answer."
    out, nfe, pos, batch_nfe, batch_pos = [], [], [], 0, 0
    P, L = prompts.shape[1], prompts.shape[1] + a.gen_length
    sync(dev); t0 = time.perf_counter()
    for c in range(0, len(prompts), a.eval_batch):
        p = prompts[c:c + a.eval_batch].to(dev)
        x0 = torch.cat([p, torch.full((len(p), a.gen_length), mask_id, device=dev)], 1)
        cb = RowCost(x0, mask_id, P, a.block_length)
        x, st = generate(model, p, rule['steps'], a.gen_length, a.block_length, threshold=rule['threshold'],
                         mask_id=mask_id, cache=SAMPLERS[sampler], callback=cb, return_stats=True)
        n_, t_ = cb.cost(sampler, L)
        out.append(x[:, P:].cpu()); nfe.append(n_); pos.append(t_)
        batch_nfe += st.nfe * len(p); batch_pos += st.tokens_run * len(p)
    sync(dev); s = time.perf_counter() - t0
    N = len(prompts)
    return dict(ids=torch.cat(out), nfe_per_answer=torch.cat(nfe).double().mean().item(),
                positions_per_answer=torch.cat(pos).double().mean().item(), batch_nfe_per_answer=batch_nfe / N,
                batch_positions_per_answer=batch_pos / N, s=s, ms_per_answer=1000 * s / N)


def evaluate(model, vocab, pairs, prompts, a, dev, step: int) -> list[dict]:
    "Every rule × sampler on all prompts; accuracy and agreement with the exact sampler at the same rule."
    M, rows = vocab.mask_id, []
    decode(model, prompts[:8], a, M, rules(a)[0], 'dual cache', dev)                   # warm-up
    for rule in rules(a):
        ref = None
        for sampler in SAMPLERS:
            r = decode(model, prompts, a, M, rule, sampler, dev)
            ids = r.pop('ids')
            correct = [answer(vocab, row) == want.strip() for row, (_, want) in zip(ids, pairs)]
            if ref is None: ref = ids
            diff = ids != ref                                                   # (N, G): tokens unlike the exact ones
            r = dict(step=step, rule=rule['rule'], sampler=sampler, **r, accuracy=sum(correct) / len(correct),
                     tokens_differ=diff.double().mean().item(), sequences_differ=diff.any(-1).double().mean().item(),
                     answers_differ=sum(answer(vocab, u) != answer(vocab, v) for u, v in zip(ids, ref)) / len(ids))
            rows.append(r)
            print(f"    step {step:5d} {rule['rule']:16s} {sampler:12s} acc {r['accuracy']:6.1%}  "
                  f"NFE {r['nfe_per_answer']:5.2f}  positions {r['positions_per_answer']:6.1f}  "
                  f"tokens != exact {r['tokens_differ']:6.2%}  sequences != exact {r['sequences_differ']:6.1%}  "
                  f"{r['ms_per_answer']:.2f} ms/answer", flush=True)
    return rows


def markdown(res: dict) -> str:
    a, mi = res['args'], res['machine']
    P, L = res['prompt_tokens'], res['prompt_tokens'] + a['gen_length']
    G, b = a['gen_length'], a['block_length']
    gpu = f" ({mi['gpu']})" if 'gpu' in mi else ''
    load = mi.get('load_avg_1m_at_start', float('nan'))
    quick = ' (QUICK smoke test: not a result)' if a['quick'] else ''
    L_ = [f"# Fast-dLLM approximate caches in `generate`{quick}", "",
          f"Command: `{res['command']}`", "",
          f"Machine: torch {mi['torch']} · device `{mi['device']}`{gpu} · CPU {mi['cpu']} "
          f"({mi.get('cpu_count', '?')} logical cores, load avg {load:.2f} at start) · "
          f"torch threads {mi['torch_threads']} · {mi['date']} · total {res['total_s']:.0f} s", "",
          f"Task: {res['task']} (`<|bos|> {res['example'][0]}` -> `{res['example'][1].strip()}` EOS), "
          f"{P} prompt tokens, "
          f"{res['answer_tokens']} answer tokens, EOS, EOS padding; `gen_length` {G} in {G // b} blocks of {b} "
          f"(L = {L}). {a['n_eval']} held-out prompts (seed + 10000; {res['eval_seen_frac']:.1%} of them also drawn "
          "in training), exact match of the answer, temperature 0, low-confidence remasking.", "",
          f"Model: full-attention `Denoiser`, d_model {a['d_model']}, n_layer {a['n_layer']}, n_head {a['n_head']}, "
          f"vocab {res['vocab_size']} ({res['params'] / 1e6:.3f} M parameters), `MaskedDiffusion` (LLaDA objective), "
          f"{a['steps']} steps × {a['batch_size']} sequences, lr {a['lr']}, seed {a['seed']}: "
          f"{res['train']['wall_s']:.0f} s of training, final train loss "
          f"{res['train']['train_loss_last10pct']:.4f}.", "",
          "Columns. *NFE / answer*: denoiser passes one answer needs (each pass, a refresh or a span pass, counts 1; "
          "per row, what decoding it alone costs); *positions / answer*: token positions those passes ran (an exact "
          f"pass or a refresh runs all L = {L}, a dual-cache span pass the block's {b}, a prefix-cache span pass the "
          "block and everything after it); *batch*: the same from `SampleStats` of the batched calls (a batch runs "
          f"until its slowest row is done); *tokens / sequences ≠ exact*: generated tokens (of all {G}, EOS padding "
          "included) and sequences that differ from the exact sampler's at the same rule; *answers ≠ exact*: the "
          "same for the parsed answer; *ms / answer*: wall time of decoding all prompts "
          f"(batches of {a['eval_batch']}) on a shared CPU.", ""]
    for step in sorted({r['step'] for r in res['rows']}, reverse=True):
        rows = [r for r in res['rows'] if r['step'] == step]
        L_ += [f"## {'Trained model' if step == a['steps'] else 'Earlier checkpoint'}: step {step}", "",
               "| commit rule | sampler | accuracy | NFE / answer | positions / answer | vs exact | batch NFE | "
               "batch positions | tokens ≠ exact | sequences ≠ exact | answers ≠ exact | ms / answer |",
               "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            base = next(q for q in rows if q['rule'] == r['rule'] and q['sampler'] == 'exact')
            fewer = base['positions_per_answer'] / r['positions_per_answer']
            L_.append(f"| {r['rule']} | {r['sampler']} | {r['accuracy']:.1%} | {r['nfe_per_answer']:.2f} | "
                      f"{r['positions_per_answer']:.1f} | {fewer:.2f}× fewer | {r['batch_nfe_per_answer']:.2f} | "
                      f"{r['batch_positions_per_answer']:.1f} | {r['tokens_differ']:.2%} | "
                      f"{r['sequences_differ']:.1%} | {r['answers_differ']:.1%} | {r['ms_per_answer']:.2f} |")
        L_.append("")
    rate = '; '.join(f"{k}: {v:.2f}" for k, v in res['tokens_per_step'].items())
    L_ += ["Notes. With one step per block every pass is a refresh, so the caches cannot change anything "
           f"(0 differences, the same positions). Binomial standard error of an accuracy p on {a['n_eval']} prompts: "
           f"sqrt(p(1 − p)/{a['n_eval']}), at most {50 / a['n_eval'] ** .5:.1f} points. Tokens committed per step by "
           f"the exact sampler under the threshold rule, trained model, over all {G} generated positions "
           f"(answer, EOS and EOS padding): {rate}. Wall time also counts the commit step (a float64 softmax over the "
           "vocabulary), which the cached sampler applies to the block's positions only and the exact sampler to all "
           "L, so the wall-time ratio on this CPU mixes that saving with the network's; the position counts are what "
           "carries over to a large model on a GPU (`bench_llada_gpu.py`).", ""]
    return '\n'.join(L_)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Outputs: <out-dir>/fast_cache_bench.md and .json (.quick.* with --quick).")
    p.add_argument('--quick', action='store_true', help='tiny model, 40 training steps, 50 prompts: a smoke test')
    for k in FULL:
        p.add_argument('--' + k.replace('_', '-'), type=int, default=None, help=f"default {FULL[k]} / quick {QUICK[k]}")
    p.add_argument('--checkpoints', default=None, help=f"also decode at these training steps, comma separated "
                   f"(default {CHECKPOINTS['full']!r} / quick {CHECKPOINTS['quick']!r}; '' = only the trained model)")
    p.add_argument('--task', default='reversal', choices=['reversal', 'addition'],
                   help='reversal of --length letters from abcdefgh, or addition of two --length-digit numbers')
    p.add_argument('--lr', type=float, default=3e-3)
    add_run_flags(p, HERE / 'results')
    p.add_argument('--replot', action='store_true', help='only rewrite the markdown from the .json (no training)')
    p.set_defaults(threads=1)
    a = p.parse_args(argv)
    a = apply_profile(a, QUICK if a.quick else FULL)
    ck = CHECKPOINTS['quick' if a.quick else 'full'] if a.checkpoints is None else a.checkpoints
    try: a.checkpoints = [int(c) for c in ck.split(',') if c.strip()]
    except ValueError: p.error(f"--checkpoints must be comma-separated step numbers, got {ck!r}")
    if a.gen_length % a.block_length:
        p.error(f"--block-length {a.block_length} must divide --gen-length {a.gen_length}")
    need = a.length + (2 if a.task == 'addition' else 1)                   # answer tokens + EOS
    if a.gen_length < need: p.error(f"--gen-length {a.gen_length} is too short for {need - 1} answer tokens and EOS")
    return a


def main(argv=None):
    a = parse_args(argv)
    out = Path(a.out_dir)
    stem = 'fast_cache_bench.quick' if a.quick else 'fast_cache_bench'       # --quick never overwrites a full result
    if a.replot:
        md = markdown(json.loads((out / f'{stem}.json').read_text()))
        atomic_write_text(out / f'{stem}.md', md); print(md); return
    command, T0, dev, mi = start_run(a, argv, 'fast-cache benchmark')
    if a.task == 'reversal':
        task = Reversal(a.length, a.length, ALPHABET)
        dcfg = TextDataConfig(seq_len=64, tasks='reversal', lm_fraction=0.0, reversal_alphabet=ALPHABET,
                              reversal_min_len=a.length, reversal_max_len=a.length, n_train=1000, n_val=8)
    else:
        task = FixedAddition(a.length)
        dcfg = TextDataConfig(seq_len=64, tasks='addition', lm_fraction=0.0, addition_digits=a.length, n_train=1000,
                              n_val=8)
    vocab, _, _ = build_text_data(dcfg, a.seed)                    # the library's BPE vocab, with task examples
    P = 1 + len(vocab.encode(task.sample(random.Random(0))[0]))                # <|bos|> + the prompt
    seq_len = P + a.gen_length
    train_ds = TaskDataset(vocab, task, seq_len, TextDataConfig.n_train, seed=a.seed)   # 200,000, as the library
    val = TaskDataset(vocab, task, seq_len, a.n_eval, seed=a.seed + 10_000)
    pairs = [val.pair(i) for i in range(a.n_eval)]
    prompts = torch.tensor([[vocab.bos_id] + vocab.encode(p) for p, _ in pairs])   # (N, P): all the same length
    if prompts.shape[1] != P: raise RuntimeError(f"prompt lengths differ from {P}")
    seen = seen_prompts(ConcatDataset([train_ds]), a.steps, a.batch_size, a.seed)
    seed_everything(a.seed)
    model = Denoiser(ModelConfig(vocab_size=vocab.vocab_size, max_len=seq_len, d_model=a.d_model, n_layer=a.n_layer,
                                 n_head=a.n_head)).to(dev)
    stops = sorted({s for s in a.checkpoints if 0 < s < a.steps} | {a.steps})
    print(f"training {a.steps} steps on {task}, L = {seq_len}; decoding {a.n_eval} held-out prompts at steps {stops}",
          flush=True)
    rows = []
    st = train_with_stops(model, MaskedDiffusion(vocab.mask_id), train_ds, a, dev, stops, 'full attention',
                          lambda step, m: rows.extend(evaluate(m, vocab, pairs, prompts, a, dev, step)))
    task_name = (f"reversal of {a.length} letters from {ALPHABET!r} (`mmdiff.data.Reversal`)" if a.task == 'reversal'
                 else f"fixed-width addition with carries, {a.length}-digit operands, leading zeros (`FixedAddition`)")
    res = dict(command=command, machine=mi, args=vars(a), vocab_size=vocab.vocab_size,
               params=sum(p.numel() for p in model.parameters()), prompt_tokens=P, example=pairs[0],
               answer_tokens=len(vocab.encode(pairs[0][1])), task=task_name,
               eval_seen_frac=sum(p in seen for p, _ in pairs) / len(pairs), train=st, rows=rows)
    res['tokens_per_step'] = {r['rule']: a.gen_length / r['nfe_per_answer'] for r in rows   # read by bench_llada_gpu.py
                              if r['step'] == a.steps and r['sampler'] == 'exact' and r['rule'].startswith('threshold')}
    res['total_s'] = time.perf_counter() - T0
    write_results(out, stem, res, markdown(res))
    return res


if __name__ == '__main__': main()
