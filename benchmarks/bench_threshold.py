#!/usr/bin/env python
"""Threshold decoding benchmark for mmdiff (Fast-dLLM parallel decoding): network evaluations (NFE) against exact-match
accuracy on a procedural task that the models learn, for a full-attention masked-diffusion model (LLaDA sampler) and a
block-diffusion model (BD3-LM, block sampler with KV cache) of the same size trained for the same number of steps.

The task is the fixed-length reversal of `mmdiff demo --text`: `<|bos|> reverse: a e h g e =` -> ` e g h e a` `<|eos|>`
(5 letters from 'abcdefgh'; 9 prompt tokens, 5 answer tokens, EOS, EOS padding to L = 16). Every model is decoded at
temperature 0 with one token per step (LLaDA's schedule, the baseline), with the confidence-threshold rule for each
threshold, and with the factor rule, on held-out seeds. Target of issue #4: >= 3x fewer NFE at <= 1 point accuracy loss.

    python benchmarks/bench_threshold.py --quick     # smoke test, under a minute
    python benchmarks/bench_threshold.py             # the full benchmark (~15 min on a busy 2-core CPU)
    python benchmarks/bench_threshold.py --replot    # only redraw threshold_bench.png / .md from threshold_bench.json
"""
from __future__ import annotations
import argparse, json, tempfile, time
from pathlib import Path

import torch

from common import sync, apply_profile, add_run_flags, seen_prompts, start_run
from bench_block import answer
from mmdiff.core import seed_everything, atomic_write_text, atomic_write_bytes
from mmdiff.model import Denoiser, ModelConfig, BlockDiff
from mmdiff.loss import MaskedDiffusion
from mmdiff.block import BlockDiffusion, generate_block
from mmdiff.sample import generate
from mmdiff.train import Trainer, TrainConfig
from mmdiff.recipes import TextDataConfig, build_text_data
from mmdiff.data import TaskDataset, Reversal

HERE = Path(__file__).resolve().parent

FULL = dict(d_model=128, n_layer=4, n_head=4, seq_len=16, block_size=4, batch_size=64, steps=1000, n_eval=1000, n_eval_early=500, eval_batch=500)
QUICK = dict(d_model=32, n_layer=2, n_head=2, seq_len=16, block_size=4, batch_size=32, steps=40, n_eval=100, n_eval_early=50, eval_batch=100)
THRESHOLDS = (None, 0.99, 0.95, 0.9, 0.8, 0.7, 0.5)   # None: one token per step (the baseline)
FACTORS = (0.25, 0.5, 1.0, 2.0)
TASK = dict(reversal_alphabet='abcdefgh', reversal_min_len=5, reversal_max_len=5)   # the demo's task: fixed length 5
CHECKPOINTS = dict(full='130,160,200', quick='20')   # intermediate training steps that are decoded too
TARGET_X, TARGET_DROP = 3.0, 0.01                      # >= 3x fewer NFE at <= 1 point accuracy loss


class RowPasses:
    "Sampler callback: per row, the passes in which it committed a token (it then still had a [MASK] in the current block)."
    def __init__(self, x0: torch.Tensor, mask_id: int):
        self.mask_id, self.left = mask_id, (x0 == mask_id).sum(-1)           # (B,) masks left
        self.passes = torch.zeros_like(self.left)                            # (B,)
    def __call__(self, step: int, x: torch.Tensor):
        left = (x == self.mask_id).sum(-1)
        self.passes += left < self.left; self.left = left

@torch.no_grad()
def decode_eval(model, vocab, ds, n: int, block: bool, threshold, factor, dev, eval_batch: int) -> dict:
    """Exact match on the first `n` items of `ds` at temperature 0, prompts batched by length (at most `eval_batch` a call).
    block: `generate_block` (KV cache, stops at EOS); else `generate` (LLaDA, one block over the answer).
    nfe_per_answer: mean over answers of the denoising passes that answer needed (what decoding it alone costs: every pass
    commits >= 1 token of every row that still has a [MASK] in the current block). batch_nfe_per_answer: passes of the batched
    calls (a batch runs until its slowest row is done), per answer. Cache passes (block sampler: prompt prefill + appending
    finished blocks) are counted apart."""
    pairs = [ds.pair(i) for i in range(n)]
    enc = [[vocab.bos_id] + vocab.encode(p) for p, _ in pairs]
    correct, passes, nfe, t0 = [False] * n, [0] * n, 0, time.perf_counter()
    M = vocab.mask_id
    for P in sorted({len(e) for e in enc}):
        idx_all = [k for k, e in enumerate(enc) if len(e) == P]
        for c in range(0, len(idx_all), eval_batch):
            idx = idx_all[c:c + eval_batch]
            prompt = torch.tensor([enc[k] for k in idx], device=dev)         # (b, P)
            gen = ds.seq_len - P
            cb = RowPasses(torch.full((len(idx), gen), M, device=dev), M)
            if block: out, st = generate_block(model, prompt, gen, threshold=threshold, factor=factor, eos_id=vocab.eos_id,
                                               mask_id=M, callback=cb, return_stats=True)
            else: out, st = generate(model, prompt, gen, gen, gen, threshold=threshold, factor=factor, mask_id=M, callback=cb, return_stats=True)
            for k, row, q in zip(idx, out, cb.passes.tolist()): correct[k], passes[k] = answer(vocab, row[P:]) == pairs[k][1].strip(), q
            nfe += st.nfe * len(idx)
    sync(dev)
    s = time.perf_counter() - t0
    return dict(accuracy=sum(correct) / n, nfe_per_answer=sum(passes) / n, batch_nfe_per_answer=nfe / n,
                s=s, ms_per_answer=1000 * s / n, correct=correct)

def rule_name(r: dict) -> str:
    if r['threshold'] is not None: return f"threshold {r['threshold']}"
    if r['factor'] is not None: return f"factor {r['factor']}"
    return 'one token per step'


def _row(r: dict, step: bool = False) -> str:
    ok = '**yes**' if r['meets_target'] else ('baseline' if r['threshold'] is None and r['factor'] is None else 'no')
    return (f"| {r['model']} | {str(r['step']) + ' | ' if step else ''}{rule_name(r)} | {r['accuracy']:.1%} | {100 * r['delta_acc']:+.1f} | "
            f"{r['nfe_per_answer']:.2f} | {r['nfe_reduction']:.2f}× | {r['batch_nfe_per_answer']:.2f} | "
            f"{r['ms_per_answer']:.2f} | {ok} |")

HEAD = ("accuracy | Δ acc (points) | NFE / answer | NFE reduction | batch NFE / answer | ms / answer | meets target |",
        "---|---|---|---|---|---|---|")

def markdown(res: dict) -> str:
    a, mi = res['args'], res['machine']
    final = [r for r in res['rows'] if r['step'] == a['steps']]
    early = [r for r in res['rows'] if r['step'] != a['steps']]
    L = [f"# mmdiff threshold-decoding benchmark{' (QUICK smoke test: tiny model, not a result)' if a['quick'] else ''}", "",
         f"Command: `{res['command']}`", "",
         f"Machine: torch {mi['torch']} · device `{mi['device']}`{' (' + mi['gpu'] + ')' if 'gpu' in mi else ''} · CPU {mi['cpu']} "
         f"({mi.get('cpu_count', '?')} logical cores, load avg {mi.get('load_avg_1m_at_start', float('nan')):.2f} at start) · "
         f"torch threads {mi['torch_threads']} · {mi['date']} · total {res['total_s']:.0f} s", "",
         f"Task: reversal of 5 letters from 'abcdefgh' (the `mmdiff demo --text` task), L = {a['seq_len']} tokens: {res['prompt_tokens']} prompt tokens "
         f"(`<|bos|> reverse: a e h g e =`), 5 answer tokens, EOS, EOS padding; {a['seq_len'] - res['prompt_tokens']} generated positions. "
         f"Evaluation: {a['n_eval']} prompts from held-out seeds (seed + 10000), exact match of the answer, temperature 0.", "",
         f"Models: d_model {a['d_model']}, n_layer {a['n_layer']}, n_head {a['n_head']}, vocab {res['vocab_size']} "
         f"({res['params'] / 1e6:.3f} M parameters each), {a['steps']} steps × {a['batch_size']} sequences, lr {a['lr']}, seed {a['seed']}.", "",
         "| model | objective / sampler | train wall s | final train loss |", "|---|---|---|---|"]
    for m in res['models']:
        L.append(f"| {m['model']} | {m['sampler']} | {m['train']['wall_s']:.0f} | {m['train']['train_loss_last10pct']:.4f} |")
    L += ["", f"## NFE against accuracy, trained models ({a['steps']} steps)", "",
          "NFE / answer = denoising forward passes that an answer needs (mean over answers; what decoding it alone costs). "
          "Batch NFE / answer = passes of the batched calls (a batch of prompts runs until its slowest row is done). "
          f"**meets target** = at least {TARGET_X:g}× fewer NFE / answer than one token per step with at most {TARGET_DROP * 100:g} point "
          "less accuracy, for the same model.", "",
          "| model | commit rule | " + HEAD[0], "|---|---|" + HEAD[1]]
    L += [_row(r) for r in final]
    met = [r for r in final if r['meets_target']]
    best = []
    for m in res['models']:
        mine = [r for r in met if r['model'] == m['model']]
        if mine:
            r = max(mine, key=lambda r: (r['nfe_reduction'], r['accuracy']))
            best.append(f"{m['model']}: {rule_name(r)}, {r['nfe_reduction']:.1f}× fewer NFE at {r['accuracy']:.1%} ({100 * r['delta_acc']:+.1f} points)")
        else: best.append(f"{m['model']}: no setting")
    n_rules = len(final) - len(res['models'])
    L += ["", f"**Target (≥ {TARGET_X:g}× fewer NFE at ≤ {TARGET_DROP * 100:g} point accuracy loss): {'met' if met else 'NOT met'}** "
          f"by {len(met)} of {n_rules} settings. Largest reduction that meets it — " + '; '.join(best) + ".", ""]
    if early:
        L += [f"## The same runs part-way through training (steps {', '.join(str(s) for s in sorted({r['step'] for r in early}))})", "",
              f"Decoded with the same rules at earlier steps of the same runs (on the first {early[0]['n_eval']} of the held-out prompts), "
              "where the models are less sure of themselves, to show the trade-off that the trained models no longer show. "
              "The learning rate is still high there, so accuracy is not monotone in the step.", "",
              "| model | step | commit rule | " + HEAD[0], "|---|---|---|" + HEAD[1]]
        L += [_row(r, step=True) for r in early]
        L.append("")
    b0 = final[0]['accuracy']
    se = (f"a binomial standard error of about {100 * (b0 * (1 - b0) / a['n_eval']) ** .5:.1f} points at the baseline's accuracy" if 0 < b0 < 1 else
          f"no error in {a['n_eval']} answers for the full-attention baseline: by the rule of three its error rate is below "
          f"{300 / a['n_eval']:.1f} % (95 %)" if b0 == 1 else "no correct answer")
    L += [f"Notes. Accuracy on {a['n_eval']} prompts: {se}. "
          f"The 5-letter strings over 8 letters are only 8^5 = 32,768, so held-out *seeds* are not held-out *strings*: "
          f"{res['eval_seen_frac']:.1%} of the evaluation prompts were also drawn in the {a['steps']} training steps; on the {res['n_unseen']} "
          "never-seen prompts the trained models score " + '; '.join(f"{r['model']} / {rule_name(r)}: {r['accuracy_unseen']:.1%}" for r in final
                                                                    if r['threshold'] in (None, 0.5) and r['factor'] is None) + ".",
          "",
          "The full-attention model is decoded by `mmdiff.sample.generate` with one block over the generated positions "
          "(steps = generated positions for the baseline); the block model by `mmdiff.block.generate_block` with its KV cache, "
          f"one block of {a['block_size']} at a time (the first answer block also holds the last prompt token), so its NFE cannot go below "
          f"the number of answer blocks ({res['min_block_nfe']}). It has no pass of its own for the cache: each block's first pass also "
          "stores the prompt or the previous block, so the NFE column counts every forward pass. "
          "The block sampler stops once every row has produced EOS, so a model that ends answers early also spends fewer NFE. "
          "Threshold rule: commit every masked token with confidence ≥ τ (at least the most confident one); factor rule: the top n "
          "with (n + 1)(1 − c_(n)) < f (Fast-dLLM). Wall time: one timed pass over all prompts per row, batches of up to "
          f"{a['eval_batch']} prompts, on a shared machine (indicative only).", ""]
    return '\n'.join(L)


def plot(res: dict, path: Path):
    "Accuracy against NFE per answer: one line per model (threshold rule; factor rule as open squares); right panel: earlier steps."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from io import BytesIO
    a = res['args']
    steps = sorted({r['step'] for r in res['rows']})
    early = [s for s in steps if s != a['steps']]
    fig, axes = plt.subplots(1, 2 if early else 1, figsize=(12 if early else 7, 4.4), squeeze=False)
    cols = dict(zip([m['model'] for m in res['models']], ('tab:blue', 'tab:orange', 'tab:green')))
    styles = ['-', '--', '-.', ':']
    def draw(ax, step, ls, label_step, annotate):
        for k, m in enumerate(res['models']):
            col = cols[m['model']]
            rows = [r for r in res['rows'] if r['model'] == m['model'] and r['step'] == step]
            thr = sorted((r for r in rows if r['factor'] is None), key=lambda r: r['nfe_per_answer'])
            ax.plot([r['nfe_per_answer'] for r in thr], [100 * r['accuracy'] for r in thr], 'o', ls=ls, color=col,
                    label=f"{m['model']}{label_step}: threshold τ")
            if annotate:                                                     # one label per point: rules that land on the same spot share it
                spots = {}
                for r in rows: spots.setdefault((round(r['nfe_per_answer'], 2), round(100 * r['accuracy'], 1)), []).append(r)
                for (x, y), rs in spots.items():
                    taus = [str(r['threshold']) for r in rs if r['threshold'] is not None]
                    fs = [str(r['factor']) for r in rs if r['factor'] is not None]
                    lab = ', '.join((['1/step'] if any(r['threshold'] is None and r['factor'] is None for r in rs) else []) +
                                    (['τ ' + '/'.join(taus)] if taus else []) + (['f ' + '/'.join(fs)] if fs else []))
                    ax.annotate(lab, (x, y), textcoords='offset points', xytext=(4, -12 - 9 * k if k % 2 == 0 else 5 + 9 * (k - 1)),
                                fontsize=6.5, color=col, wrap=True)
            fac = [r for r in rows if r['factor'] is not None]
            ax.plot([r['nfe_per_answer'] for r in fac], [100 * r['accuracy'] for r in fac], 's', mfc='none', ms=8, color=col,
                    label=f"{m['model']}{label_step}: factor f" if annotate else None)
    ax = axes[0, 0]
    draw(ax, a['steps'], '-', '', True)
    for m in res['models']:
        base = next(r for r in res['rows'] if r['model'] == m['model'] and r['step'] == a['steps'] and r['threshold'] is None and r['factor'] is None)
        ax.axvline(base['nfe_per_answer'] / TARGET_X, color=cols[m['model']], ls=':', lw=1)
        ax.axhline(100 * (base['accuracy'] - TARGET_DROP), color=cols[m['model']], ls=':', lw=1)
    lo = min(100 * r['accuracy'] for r in res['rows'] if r['step'] == a['steps'])
    ax.set_ylim(min(lo - 3, 95), 100.8)
    ax.set(xlabel='denoising passes per answer (NFE)', ylabel='exact-match accuracy (%)',
           title=f"trained ({a['steps']} steps), {a['n_eval']} held-out prompts")
    ax.text(0.99, 0.02, f"dotted: {TARGET_X:g}× fewer NFE than 1 token/step, and 1 point below its accuracy\n"
            "(labels: threshold τ; target region = top left of both lines)", transform=ax.transAxes, ha='right', va='bottom', fontsize=7, color='grey')
    ax.legend(fontsize=7, loc='center right'); ax.grid(alpha=.3)
    if early:
        ax = axes[0, 1]
        for s, ls in zip(early, styles[1:] * 3): draw(ax, s, ls, f' @ step {s}', False)
        draw(ax, a['steps'], '-', f" @ step {a['steps']}", False)
        for r in res['rows']:                                               # name each line by its step, at its 1-token-per-step end
            if r['threshold'] is None and r['factor'] is None and r['accuracy'] < 0.995:
                ax.annotate(f"step {r['step']}", (r['nfe_per_answer'], 100 * r['accuracy']), textcoords='offset points', xytext=(-8, 5),
                            ha='right', fontsize=7, color=cols[r['model']])
        ax.set(xlabel='denoising passes per answer (NFE)', ylabel='exact-match accuracy (%)', ylim=(-2, 102),
               title='the same runs part-way through training (threshold: lines, factor: squares)')
        ax.legend(fontsize=7, loc='lower right'); ax.grid(alpha=.3)
    for ax in axes[0]: ax.title.set_fontsize(9)
    fig.tight_layout()
    buf = BytesIO(); fig.savefig(buf, format='png', dpi=120); plt.close(fig)
    atomic_write_bytes(path, buf.getvalue()); path.chmod(0o644)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Outputs: <out-dir>/threshold_bench.md, .json and .png (threshold_bench_quick.* with --quick).")
    p.add_argument('--quick', action='store_true', help='tiny model and 40 training steps: a smoke test of the script')
    for k in FULL: p.add_argument('--' + k.replace('_', '-'), type=int, default=None, help=f"default {FULL[k]} / quick {QUICK[k]}")
    p.add_argument('--checkpoints', default=None, help=f"also decode at these training steps, comma separated "
                   f"(default {CHECKPOINTS['full']!r} / quick {CHECKPOINTS['quick']!r}; '' = only the trained model)")
    p.add_argument('--lr', type=float, default=3e-3)
    add_run_flags(p, HERE / 'results')
    p.add_argument('--replot', action='store_true', help='only redraw the PNG (and the markdown) from <out-dir>/threshold_bench.json (no training)')
    a = p.parse_args(argv)
    a = apply_profile(a, QUICK if a.quick else FULL)
    ck = CHECKPOINTS['quick' if a.quick else 'full'] if a.checkpoints is None else a.checkpoints
    try: a.checkpoints = [int(c) for c in ck.split(',') if c.strip()]
    except ValueError: p.error(f"--checkpoints must be comma-separated step numbers, got {ck!r}")
    if a.seq_len % a.block_size: p.error(f"--block-size {a.block_size} must divide --seq-len {a.seq_len}")
    if a.seq_len < 16: p.error(f"--seq-len {a.seq_len} is too short: the task needs 9 prompt + 5 answer tokens + EOS = 15, and one EOS pad")
    return a

def train_with_stops(model, objective, ds, a, dev, stops: list[int], label: str, on_stop) -> dict:
    """`bench_block.train`'s recipe (same TrainConfig), paused at each step in `stops` to call `on_stop(step, model)`.
    Decoding at temperature 0 draws no random numbers and the Trainer re-seeds its noise per micro-batch, so the pauses do
    not change the final model."""
    with tempfile.TemporaryDirectory(prefix='mmdiff_tbench_') as out:
        cfg = TrainConfig(out_dir=out, max_steps=a.steps, batch_size=a.batch_size, lr=a.lr, warmup_steps=min(100, a.steps // 10),
                          eval_every=0, seed=a.seed, progress=a.progress, cpu=dev.type == 'cpu')
        tr, wall = Trainer(model, objective, ds, cfg), 0.0
        for s in stops:
            t0 = time.perf_counter(); hist = tr.fit(until=s); wall += time.perf_counter() - t0
            last = [h['loss'] for h in hist[-max(1, len(hist) // 10):]]
            print(f"  {label}: step {len(hist)}, {wall:.0f} s of training, train loss (last 10 %) {sum(last) / len(last):.4f}", flush=True)
            on_stop(s, tr.raw_model.eval())
    return dict(steps=len(hist), wall_s=wall, train_loss_last10pct=sum(last) / len(last), tokens=len(hist) * a.batch_size * len(ds[0]['ids']))

def evaluate_rules(m, vocab, val, a, block: bool, dev, name: str, step: int, unseen: list[int], n: int) -> list[dict]:
    "One row per commit rule on the first `n` held-out prompts (one token per step first: the baseline the others are compared with)."
    decode_eval(m, vocab, val, min(n, 8), block, None, None, dev, a.eval_batch)                    # warm-up
    unseen = [k for k in unseen if k < n]
    rows, base = [], None
    for tau, f in [(t, None) for t in THRESHOLDS] + [(None, f) for f in FACTORS]:
        r = decode_eval(m, vocab, val, n, block, tau, f, dev, a.eval_batch)
        correct = r.pop('correct')
        r = dict(model=name, step=step, n_eval=n, threshold=tau, factor=f, **r, accuracy_unseen=sum(correct[k] for k in unseen) / max(1, len(unseen)))
        if base is None: base = r
        r['delta_acc'] = r['accuracy'] - base['accuracy']
        r['nfe_reduction'] = base['nfe_per_answer'] / r['nfe_per_answer']
        r['meets_target'] = r is not base and r['nfe_reduction'] >= TARGET_X and r['delta_acc'] >= -TARGET_DROP - 1e-12
        print(f"    step {step:5d} {rule_name(r):20s} acc {r['accuracy']:6.1%}  NFE {r['nfe_per_answer']:5.2f} ({r['nfe_reduction']:.2f}x)  "
              f"{r['ms_per_answer']:.2f} ms/answer{'  <- target met' if r['meets_target'] else ''}", flush=True)
        rows.append(r)
    return rows

def main(argv=None):
    a = parse_args(argv)
    if a.replot:
        out, stem = Path(a.out_dir), 'threshold_bench_quick' if a.quick else 'threshold_bench'
        res = json.loads((out / f'{stem}.json').read_text())
        atomic_write_text(out / f'{stem}.md', markdown(res)); (out / f'{stem}.md').chmod(0o644); plot(res, out / f'{stem}.png')
        print(f"written {out / stem}.md and .png from {out / stem}.json"); return res
    command, T0, dev, mi = start_run(a, argv, 'threshold benchmark')
    dcfg = TextDataConfig(seq_len=a.seq_len, tasks='reversal', lm_fraction=0.0, **TASK)
    vocab, train_ds, _ = build_text_data(dcfg, a.seed)
    val = TaskDataset(vocab, Reversal(5, 5, TASK['reversal_alphabet']), a.seq_len, a.n_eval, seed=a.seed + 10_000)
    M, b = vocab.mask_id, a.block_size

    def model(att=None):
        seed_everything(a.seed)
        return Denoiser(ModelConfig(vocab_size=vocab.vocab_size, max_len=a.seq_len, d_model=a.d_model, n_layer=a.n_layer, n_head=a.n_head), att).to(dev)

    specs = [('full attention', 'LLaDA masked diffusion / `generate`', None, MaskedDiffusion(M), False),
             (f'block {b}', f'BD3-LM, b = {b} / `generate_block` + KV cache', BlockDiff(b), BlockDiffusion(M, b), True)]
    seen = seen_prompts(train_ds, a.steps, a.batch_size, a.seed)
    pairs = [val.pair(i) for i in range(a.n_eval)]
    unseen = [k for k, (p, _) in enumerate(pairs) if p not in seen]
    P = 1 + len(vocab.encode(pairs[0][0]))
    stops = sorted({s for s in a.checkpoints if 0 < s < a.steps} | {a.steps})
    res_models, rows = [], []
    for name, sampler, att, obj, block in specs:
        print(f"[{name}] training {a.steps} steps, decoding held-out prompts at steps {stops}", flush=True)
        m = model(att)
        st = train_with_stops(m, obj, train_ds, a, dev, stops, name,
                              lambda step, m: rows.extend(evaluate_rules(m, vocab, val, a, block, dev, name, step, unseen,
                                                                                       a.n_eval if step == a.steps else min(a.n_eval, a.n_eval_early))))
        res_models.append(dict(model=name, sampler=sampler, train=st))
    params = sum(p.numel() for p in m.parameters())

    res = dict(command=command, machine=mi, args=vars(a), vocab_size=vocab.vocab_size, params=params, models=res_models, rows=rows,
               target=dict(nfe_reduction=TARGET_X, max_acc_drop=TARGET_DROP,
                           met=any(r['meets_target'] for r in rows if r['step'] == a.steps)),
               eval_seen_frac=1 - len(unseen) / a.n_eval, n_unseen=len(unseen), prompt_tokens=P,
               min_block_nfe=-(-a.seq_len // b) - P // b)
    res['total_s'] = time.perf_counter() - T0
    out, stem = Path(a.out_dir), 'threshold_bench_quick' if a.quick else 'threshold_bench'   # --quick never overwrites a full result
    out.mkdir(parents=True, exist_ok=True)
    md = markdown(res)
    atomic_write_text(out / f'{stem}.md', md)
    atomic_write_text(out / f'{stem}.json', json.dumps(res, indent=2, default=str))
    for f in ('.md', '.json'): (out / (stem + f)).chmod(0o644)
    plot(res, out / f'{stem}.png')
    print('\n' + md + f"\nwritten {out / stem}.md, .json and .png", flush=True)
    return res

if __name__ == '__main__': main()
