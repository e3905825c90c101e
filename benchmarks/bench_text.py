#!/usr/bin/env python
"""Text benchmark for mmdiff: training throughput, held-out likelihood and reversal accuracy of the masked-diffusion
denoiser against an autoregressive model of the same architecture and size, and a plain-PyTorch causal transformer.

All measurements run in one process, one after the other, on one machine, so the ratios between rows are meaningful;
absolute numbers depend on the machine and on what else runs on it. This is a benchmark, not a test: nothing is asserted.

    python benchmarks/bench_text.py --quick      # ~2 min smoke test with a tiny model
    python benchmarks/bench_text.py              # the full benchmark (~10-12 min on a quiet 2-core CPU)

See benchmarks/README.md for what each number means.
"""
from __future__ import annotations
import argparse, json, math, statistics, tempfile, time, warnings
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import sync, machine_info, command_line, apply_profile, seen_prompts
from mmdiff.core import seed_everything, get_device, atomic_write_text
from mmdiff.model import Denoiser, ModelConfig, Causal
from mmdiff.loss import MaskedDiffusion, Autoregressive
from mmdiff.train import Trainer, TrainConfig, collate
from mmdiff.recipes import TextDataConfig, build_text_data
from mmdiff.data import LMDataset, TaskDataset, Reversal, shakespeare
from mmdiff.evaluate import nelbo, ar_nll, task_accuracy
from mmdiff.train import steps_for_budget

HERE = Path(__file__).resolve().parent

# Defaults of the full run and of `--quick`; a flag given on the command line wins over both.
FULL = dict(budget_steps=800, d_model=192, n_layer=4, n_head=4, seq_len=64, task_seq_len=32, batch_size=32, budget_s=150.0,
            n_val=256, n_t=8, n_eval=200, tput_steps=10, tput_warmup=3, n_text=1024)
QUICK = dict(budget_steps=100, d_model=64, n_layer=2, n_head=2, seq_len=32, task_seq_len=32, batch_size=16, budget_s=20.0,
             n_val=64, n_t=2, n_eval=50, tput_steps=5, tput_warmup=2, n_text=1024)


# ----------------------------------------------------------------------------------------------------------------------
# The baseline: a causal LM made only of stock PyTorch modules
class PlainCausalLM(nn.Module):
    "GPT-style causal LM from `nn.TransformerEncoderLayer` (pre-norm LayerNorm, GELU MLP, biases), learned positions, untied head: ids (B, L) -> logits (B, L, V)."
    def __init__(self, vocab_size: int, max_len: int, d_model: int, n_layer: int, n_head: int, ff: int):
        super().__init__()
        self.tok_emb, self.pos_emb = nn.Embedding(vocab_size, d_model), nn.Embedding(max_len, d_model)
        layer = nn.TransformerEncoderLayer(d_model, n_head, ff, dropout=0.0, activation='gelu', batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layer, enable_nested_tensor=False)
        self.norm, self.head = nn.LayerNorm(d_model), nn.Linear(d_model, vocab_size, bias=False)
    def forward(self, ids):
        L = ids.shape[1]
        x = self.tok_emb(ids) + self.pos_emb(torch.arange(L, device=ids.device))          # (B, L, D)
        mask = nn.Transformer.generate_square_subsequent_mask(L, device=ids.device)         # (L, L) float, -inf above the diagonal
        return self.head(self.norm(self.encoder(x, mask=mask, is_causal=True)))             # (B, L, V)

def plain_next_token_loss(model, batch):
    "Next-token CE over all non-prompt targets (same targets as `mmdiff.loss.Autoregressive` on LM windows)."
    x, tgt = batch['ids'], ~batch['prompt'][:, 1:].bool()
    ce = F.cross_entropy(model(x[:, :-1]).flatten(0, 1), x[:, 1:].flatten(), reduction='none').view(tgt.shape)
    return (ce * tgt).sum() / tgt.sum()

def n_params(m: nn.Module) -> int: return sum(p.numel() for p in m.parameters())
def n_emb_params(m: nn.Module) -> int: return sum(mod.weight.numel() for mod in m.modules() if isinstance(mod, nn.Embedding))



def throughput(models: dict, batch: dict, steps: int, warmup: int, dev) -> dict:
    """Median seconds of one fwd + bwd + AdamW step for each of `models` ({name: (model, loss_fn)}), all on the same `batch`.
    The models take turns step by step, so slow drifts in machine load hit all of them alike."""
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, (m, _) in models.items()}
    times = {k: [] for k in models}
    for i in range(warmup + steps):
        for k, (m, loss_fn) in models.items():
            m.train(); sync(dev); t0 = time.perf_counter()
            loss = loss_fn(m, batch); loss.backward(); opts[k].step(); opts[k].zero_grad(set_to_none=True)
            sync(dev); dt = time.perf_counter() - t0
            if i >= warmup: times[k].append(dt)
    B, L = batch['ids'].shape
    return {k: dict(s_per_step=statistics.median(v), tok_per_s=B * L / statistics.median(v),
                    s_min=min(v), s_max=max(v)) for k, v in times.items()}


def train_for_budget(model, objective, train_ds, args, dev, seconds: float, label: str) -> tuple[nn.Module, dict]:
    """Train `model` with `mmdiff.train.Trainer` for `args.budget_steps` optimizer steps (the same tokens for every model,
    whatever the machine's load), or, if that is 0, for about `seconds` of wall-clock time; returns (model in eval mode, stats)."""
    B = args.batch_size
    if args.budget_steps:
        steps, seconds = args.budget_steps, 0.0
        print(f"  {label}: {steps} steps (token budget {steps * B:,} sequences)", flush=True)
    else:
        steps, dt = steps_for_budget(model, objective, train_ds, B, seconds, probe=5)   # batch building + optimizer step
        print(f"  {label}: {1000 * dt:.0f} ms/step -> {steps} steps planned for {seconds:g} s", flush=True)
    with tempfile.TemporaryDirectory(prefix='mmdiff_bench_') as out:
        cfg = TrainConfig(out_dir=out, max_steps=steps, batch_size=B, lr=args.lr, warmup_steps=min(100, steps // 10),
                          eval_every=0, seed=args.seed, progress=args.progress, time_limit_s=1.1 * seconds if seconds else 0.0, cpu=dev.type == 'cpu')
        trainer = Trainer(model, objective, train_ds, cfg)
        t0 = time.perf_counter(); hist = trainer.fit(); wall = time.perf_counter() - t0
        model = trainer.raw_model.eval()
    last = [h['loss'] for h in hist[-max(1, len(hist) // 10):]]
    st = dict(planned_steps=steps, steps=len(hist), wall_s=wall, train_loss_last10pct=sum(last) / len(last),
              trainer_tok_per_s=hist[-1]['tok_per_s'] if hist else float('nan'), sequences_seen=len(hist) * B)
    print(f"  {label}: {st['steps']} steps in {wall:.0f} s, final train loss {st['train_loss_last10pct']:.3f}", flush=True)
    return model, st

def timed_accuracy(model, vocab, ds, n, autoregressive: bool, dev) -> dict:
    sync(dev); t0 = time.perf_counter()
    kw = dict(autoregressive=True) if autoregressive else dict(steps=8, temperature=0.0)
    r = task_accuracy(model, vocab, ds, n=n, **kw)   # answers fill the prompt up to the training length
    sync(dev); dt = time.perf_counter() - t0
    return dict(accuracy=r['accuracy'], n=r['n'], ms_per_answer=1000 * dt / n, examples=r['examples'][:3])



def fmt(x, spec, prefix=''): return '—' if x is None or (isinstance(x, float) and math.isnan(x)) else prefix + format(x, spec)

def markdown(res: dict) -> str:
    a, mi, r = res['args'], res['machine'], res['rows']
    data_note = ("**separate runs**: each model trained once on Shakespeare windows only (for the NLL column, "
                 f"seq_len {a['seq_len']}) and once on reversal only (for the accuracy column, seq_len {a['task_seq_len']})"
                 if a['data'] == 'separate' else
                 f"**one mixed run**: each model trained once on 50 % Shakespeare windows + 50 % reversal (seq_len {a['seq_len']})")
    L = [f"# mmdiff text benchmark{' (QUICK smoke test: tiny model, not a result)' if a['quick'] else ''}", "",
         f"Command: `{res['command']}`", "",
         f"Machine: torch {mi['torch']} · device `{mi['device']}`{' (' + mi['gpu'] + ')' if 'gpu' in mi else ''} · CPU {mi['cpu']} "
         f"({mi.get('cpu_count', '?')} logical cores, load avg {mi.get('load_avg_1m_at_start', float('nan')):.2f} at start) · "
         f"torch threads {mi['torch_threads']} · Python {mi['python']} · {mi['date']} · total {res['total_s']:.0f} s", "",
         f"Model: d_model {a['d_model']}, n_layer {a['n_layer']}, n_head {a['n_head']}, vocab {res['vocab_size']} (BPE, "
         f"{a['n_text']} text tokens). Throughput: batch {a['batch_size']} × seq_len {a['seq_len']} Shakespeare windows, median of "
         f"{a['tput_steps']} steps after {a['tput_warmup']} warm-up steps. Likelihood/accuracy: {data_note}; "
         + (f"budget **{a['budget_steps']} optimizer steps** per model and run (same tokens for every model), " if a['budget_steps'] else
            f"budget {a['budget_s']:g} s of wall-clock training per model and run, ") + f"batch {a['batch_size']}, AdamW lr {a['lr']:g}. "
         f"NLL on {res['n_val_seqs']} windows of the held-out plays; reversal exact match on {a['n_eval']} held-out-seed "
         f"examples (temperature 0; the answer fills the prompt up to the training length; diffusion: 8 steps, one block).", "",
         "| model | params (non-emb) | train tok/s | held-out NLL or NELBO (nats/token) | ppl (bound) | reversal acc | ms/answer |",
         "|---|---|---|---|---|---|---|"]
    for row in r:
        nll = row.get('nll')
        nll_s = '—' if nll is None else (f"≤ {nll:.3f} ± {row['nll_stderr']:.3f} (NELBO)" if row['bound'] else f"{nll:.3f} (exact)")
        ppl_s = '—' if nll is None else (f"≤ {row['ppl']:.1f}" if row['bound'] else f"{row['ppl']:.1f}")
        L.append(f"| {row['model']} | {row['params'] / 1e6:.3f} M ({row['params_non_emb'] / 1e6:.3f} M) | {fmt(row['tok_per_s'], ',.0f')} | "
                 f"{nll_s} | {ppl_s} | {fmt(row.get('acc'), '.1%')} | {fmt(row.get('ms_per_answer'), '.2f')} |")
    t = res['throughput_ratio']
    L += ["", f"Throughput ratios (same batch, same machine, interleaved steps): mmdiff diffusion / plain PyTorch = **{t['diffusion_vs_plain']:.2f}×**, "
          f"mmdiff AR (Causal) / plain PyTorch = {t['ar_vs_plain']:.2f}×, mmdiff diffusion / mmdiff AR = {t['diffusion_vs_ar']:.2f}×.", "",
          "Training runs (`mmdiff.train.Trainer`, steps planned with `mmdiff.train.steps_for_budget`, which times batch building and the optimizer step, hard stop at 1.1 × budget):", "",
          "| run | planned steps | steps done | wall s | sequences seen | final train loss | Trainer tok/s |", "|---|---|---|---|---|---|---|"]
    for k, st in res['train_runs'].items():
        L.append(f"| {k} | {st['planned_steps']} | {st['steps']} | {st['wall_s']:.0f} | {st['sequences_seen']:,} | "
                 f"{st['train_loss_last10pct']:.3f} | {st['trainer_tok_per_s']:,.0f} |")
    L += ["", "Notes:",
          "- Diffusion NELBO is a Monte-Carlo **upper bound** on the NLL (`mmdiff.evaluate.nelbo`, log-linear schedule, "
          f"{a['n_t']} stratified t per window, ± one standard error over windows); the AR NLL is **exact** "
          f"(`mmdiff.evaluate.ar_nll`). Both are per target token (the {a['seq_len'] - 1} tokens after `<|bos|>` of each window) on the same windows.",
          f"- Plain PyTorch baseline: `nn.TransformerEncoderLayer(norm_first=True, activation='gelu', dropout=0)` × {a['n_layer']}, "
          f"feed-forward width {res['plain_ff']} (= 1.5 × the denoiser's SwiGLU width {res['hidden']}, so the MLP has the same parameter "
          "count and FLOPs as SwiGLU's three matrices), learned positional embedding, final LayerNorm, **untied** head (the denoiser's "
          "head is untied too), causal mask passed as `mask=` with `is_causal=True`. Trained here only for throughput.",
          "- train tok/s counts B × seq_len tokens per fwd + bwd + AdamW step (no grad clipping, no data loading); "
          "the AR models read seq_len − 1 of them as input.",
          "- ms/answer = wall time of `task_accuracy` / number of answers: prompts are batched (up to 50, grouped by prompt "
          "length), so this is amortised batch latency, not single-request latency. Diffusion: 8 forward passes over prompt + 8 "
          "tokens; AR: up to 8 forward passes without KV cache, stopping when every row has emitted EOS.",
          f"- Reversal held-out examples use seed {a['seed']} + 10000 (never a training seed), but short strings can recur: "
          f"{res['eval_seen_frac']:.1%} of the evaluation prompts were also drawn during diffusion training.",
          ]
    return '\n'.join(L) + '\n'


# ----------------------------------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Defaults shown as full / --quick. Outputs: <out-dir>/text_bench.md and <out-dir>/text_bench.json.")
    p.add_argument('--quick', action='store_true', help='tiny model and ~20 s budgets: a smoke test of the script (~2 min)')
    for k, h in [('d_model', 'model width D'), ('n_layer', 'transformer blocks'), ('n_head', 'attention heads'),
                 ('seq_len', 'sequence length of Shakespeare windows (throughput and NLL)'),
                 ('task_seq_len', 'sequence length of reversal examples (separate mode)'), ('batch_size', 'sequences per step'),
                 ('n_val', 'held-out Shakespeare windows for NELBO / NLL'), ('n_t', 'diffusion times per window for the NELBO'),
                 ('n_eval', 'held-out reversal examples'), ('tput_steps', 'timed steps per model for throughput'),
                 ('tput_warmup', 'untimed warm-up steps per model'), ('n_text', 'BPE text tokens in the vocabulary')]:
        p.add_argument('--' + k.replace('_', '-'), type=int, default=None, help=f"{h} (default {FULL[k]} / {QUICK[k]})")
    p.add_argument('--budget-steps', type=int, default=None, help='optimizer steps per model and run: the same token budget for every model (default 800 / 100; 0 = use --budget-s)')
    p.add_argument('--budget-s', type=float, default=None, help=f"wall-clock training seconds per model and run (default {FULL['budget_s']:g} / {QUICK['budget_s']:g})")
    p.add_argument('--data', choices=['separate', 'mix'], default='separate',
                   help="separate: train each model on Shakespeare only (NLL) and on reversal only (accuracy), 4 runs; "
                        "mix: one run per model on 50%% Shakespeare + 50%% reversal, 2 runs (default separate)")
    p.add_argument('--lr', type=float, default=3e-3, help='peak AdamW learning rate for the budgeted runs (default 3e-3)')
    p.add_argument('--seed', type=int, default=0, help='seed for data, init and masking noise (default 0)')
    p.add_argument('--device', default=None, help='cpu, cuda, ... (default: cuda if available, else cpu)')
    p.add_argument('--threads', type=int, default=0, help='torch.set_num_threads (default 0: leave torch\'s default)')
    p.add_argument('--progress', action='store_true', help='show the Trainer\'s tqdm bars')
    p.add_argument('--out-dir', default=str(HERE / 'results'), help='where text_bench.md / text_bench.json go (default benchmarks/results)')
    a = p.parse_args(argv)
    return apply_profile(a, QUICK if a.quick else FULL)

def main(argv=None):
    a = parse_args(argv)
    command = command_line(argv)
    if a.threads: torch.set_num_threads(a.threads)
    warnings.filterwarnings('ignore', message='.*enable_nested_tensor.*')
    T0 = time.perf_counter()
    dev = get_device(a.device)
    mi = machine_info(dev)
    print(f"mmdiff text benchmark{' (quick)' if a.quick else ''}: torch {mi['torch']}, device {dev}, {mi['torch_threads']} threads", flush=True)

    # ---- data: one vocabulary for every model (NLL in nats/token depends on the tokenizer)
    print("[data] vocabulary and datasets", flush=True)
    seed_everything(a.seed)
    if a.data == 'separate':
        vocab, rev_train, _ = build_text_data(TextDataConfig(n_text=a.n_text, seq_len=a.task_seq_len, tasks='reversal', lm_fraction=0.0), a.seed)
        _, lm_train, _ = build_text_data(TextDataConfig(n_text=a.n_text, seq_len=a.seq_len, tasks=''), a.seed, vocab=vocab)
        task_len = a.task_seq_len
    else:
        vocab, mix_train, _ = build_text_data(TextDataConfig(n_text=a.n_text, seq_len=a.seq_len, tasks='reversal', lm_fraction=0.5), a.seed)
        lm_train = rev_train = mix_train; task_len = a.seq_len
    val_lm = LMDataset(vocab, list(shakespeare('val').values()), a.seq_len, a.n_val, seed=a.seed + 1)
    val_rev = TaskDataset(vocab, Reversal(), task_len, a.n_eval, seed=a.seed + 10_000)

    def mcfg(L): return ModelConfig(vocab_size=vocab.vocab_size, max_len=L, d_model=a.d_model, n_layer=a.n_layer, n_head=a.n_head)
    diff_obj, ar_obj = MaskedDiffusion(vocab.mask_id), Autoregressive()

    # ---- (a) throughput
    print("[a] training throughput (fwd + bwd + AdamW, interleaved)", flush=True)
    seed_everything(a.seed)
    cfg = mcfg(a.seq_len)
    plain_ff = 3 * cfg.hidden // 2
    m_diff, m_ar = Denoiser(cfg).to(dev), Denoiser(cfg, Causal()).to(dev)
    m_plain = PlainCausalLM(vocab.vocab_size, a.seq_len, a.d_model, a.n_layer, a.n_head, plain_ff).to(dev)
    tb = {k: v.to(dev) for k, v in collate([lm_train[i] for i in range(a.batch_size)]).items()}
    g = torch.Generator(device=dev).manual_seed(a.seed)
    tp = throughput({'diffusion': (m_diff, lambda m, b: diff_obj(m, b, g)[0]), 'ar': (m_ar, lambda m, b: ar_obj(m, b)[0]),
                     'plain': (m_plain, plain_next_token_loss)}, tb, a.tput_steps, a.tput_warmup, dev)
    for k, v in tp.items(): print(f"  {k:9s} {1000 * v['s_per_step']:7.1f} ms/step  {v['tok_per_s']:10,.0f} tok/s", flush=True)
    params = dict(diffusion=(n_params(m_diff), n_params(m_diff) - n_emb_params(m_diff)), ar=(n_params(m_ar), n_params(m_ar) - n_emb_params(m_ar)),
                  plain=(n_params(m_plain), n_params(m_plain) - n_emb_params(m_plain)))
    del m_diff, m_ar, m_plain

    # ---- (b) + (c) budgeted training
    runs, models = {}, {}
    plan = [('lm', lm_train, a.seq_len), ('reversal', rev_train, task_len)] if a.data == 'separate' else [('mix', lm_train, a.seq_len)]
    for data_name, ds, L in plan:
        for kind, obj, att in [('diffusion', diff_obj, None), ('ar', ar_obj, Causal())]:
            label = f"{kind}/{data_name}"
            print(f"[b/c] training {label}", flush=True)
            seed_everything(a.seed)
            models[label], runs[label] = train_for_budget(Denoiser(mcfg(L), att).to(dev), obj, ds, a, dev, a.budget_s, label)
    lm_key, rev_key = ('lm', 'reversal') if a.data == 'separate' else ('mix', 'mix')

    print("[b] held-out Shakespeare likelihood", flush=True)
    nb = nelbo(models[f'diffusion/{lm_key}'], val_lm, vocab.mask_id, n_seqs=a.n_val, n_t=a.n_t, seed=a.seed)
    na = ar_nll(models[f'ar/{lm_key}'], val_lm, n_seqs=a.n_val)
    print(f"  diffusion NELBO {nb['nelbo']:.3f} ± {nb['stderr']:.3f}   AR NLL {na['nll']:.3f}", flush=True)

    print("[c] reversal accuracy", flush=True)
    rd = timed_accuracy(models[f'diffusion/{rev_key}'], vocab, val_rev, a.n_eval, False, dev)
    ra = timed_accuracy(models[f'ar/{rev_key}'], vocab, val_rev, a.n_eval, True, dev)
    print(f"  diffusion {rd['accuracy']:.1%} ({rd['ms_per_answer']:.2f} ms/answer)   AR {ra['accuracy']:.1%} ({ra['ms_per_answer']:.2f} ms/answer)", flush=True)
    seen = seen_prompts(rev_train, runs[f'diffusion/{rev_key}']['steps'], a.batch_size, a.seed)
    eval_seen_frac = sum(val_rev.pair(i)[0] in seen for i in range(a.n_eval)) / a.n_eval

    rows = [dict(model='mmdiff Denoiser, masked diffusion (bidirectional)', params=params['diffusion'][0], params_non_emb=params['diffusion'][1],
                 tok_per_s=tp['diffusion']['tok_per_s'], nll=nb['nelbo'], nll_stderr=nb['stderr'], ppl=nb['ppl_bound'], bound=True,
                 acc=rd['accuracy'], ms_per_answer=rd['ms_per_answer'], examples=rd['examples']),
            dict(model='mmdiff Denoiser + Causal(), autoregressive', params=params['ar'][0], params_non_emb=params['ar'][1],
                 tok_per_s=tp['ar']['tok_per_s'], nll=na['nll'], nll_stderr=0.0, ppl=na['ppl'], bound=False,
                 acc=ra['accuracy'], ms_per_answer=ra['ms_per_answer'], examples=ra['examples']),
            dict(model='plain PyTorch nn.TransformerEncoder causal LM (throughput only)', params=params['plain'][0],
                 params_non_emb=params['plain'][1], tok_per_s=tp['plain']['tok_per_s'], nll=None, bound=False)]
    res = dict(command=command, machine=mi, args=vars(a), vocab_size=vocab.vocab_size, hidden=cfg.hidden, plain_ff=plain_ff,
               n_val_seqs=min(a.n_val, len(val_lm)), throughput=tp,
               throughput_ratio=dict(diffusion_vs_plain=tp['diffusion']['tok_per_s'] / tp['plain']['tok_per_s'],
                                     ar_vs_plain=tp['ar']['tok_per_s'] / tp['plain']['tok_per_s'],
                                     diffusion_vs_ar=tp['diffusion']['tok_per_s'] / tp['ar']['tok_per_s']),
               train_runs=runs, heldout=dict(diffusion=nb, ar=na), reversal=dict(diffusion=rd, ar=ra),
               eval_seen_frac=eval_seen_frac, rows=rows)
    res['total_s'] = time.perf_counter() - T0
    md = markdown(res)
    out = Path(a.out_dir)
    atomic_write_text(out / 'text_bench.md', md)
    atomic_write_text(out / 'text_bench.json', json.dumps(res, indent=2, default=str))
    for f in ('text_bench.md', 'text_bench.json'): (out / f).chmod(0o644)   # atomic_write_* leaves mkstemp's 0600
    print('\n' + md + f"\nwritten {out / 'text_bench.md'} and {out / 'text_bench.json'}", flush=True)
    return res

if __name__ == '__main__': main()
