#!/usr/bin/env python
"""Where diffusion beats autoregression: the `Links` puzzle (tutorial 01's last section), over several training seeds.

A row of n switches is given through its links (1 where neighbours differ) and its last switch; the answer is the row,
left to right. Right to left every switch is one XOR; left to right the first switch is the parity of every given bit.
Three models of one size and one step budget: masked diffusion, autoregressive on the same puzzle, and autoregressive on
the mirrored puzzle (first switch given: left to right is then the easy order). Every test row (261 of the 1,024 for
n = 10, chosen by a hash, never trained on) is solved greedily. A benchmark: it prints a table
and writes it to benchmarks/results/order_bench.md; nothing is asserted.

    python benchmarks/bench_order.py                 # 3 seeds x 3 models, ~15 min on one CPU core
    python benchmarks/bench_order.py --seeds 0 --steps 100   # a smoke run
"""
from __future__ import annotations
import argparse, statistics, tempfile, time
from itertools import product
from pathlib import Path

import torch

from common import machine_info, command_line, write_results
from mmdiff.data import Links, TaskDataset
from mmdiff.loss import MaskedDiffusion, Autoregressive
from mmdiff.model import Denoiser, ModelConfig, Causal
from mmdiff.sample import generate, generate_ar
from mmdiff.train import Trainer, TrainConfig
from mmdiff.vocab import train_vocab

HERE = Path(__file__).resolve().parent
RUNS = (('diffusion', 'last'), ('autoregressive', 'last'), ('autoregressive', 'first'))


def train(vocab, L, kind, given, a, seed):
    ds = TaskDataset(vocab, Links(a.n, given=given, split='train'), L, 200_000, seed=seed)
    net = Denoiser(ModelConfig(vocab_size=vocab.vocab_size, max_len=L, d_model=a.d_model, n_layer=a.n_layer, n_head=4),
                   Causal() if kind == 'autoregressive' else None)
    obj = Autoregressive() if kind == 'autoregressive' else MaskedDiffusion(vocab.mask_id)
    cfg = TrainConfig(out_dir=tempfile.mkdtemp(prefix='mmdiff_order_'), max_steps=a.steps, batch_size=a.batch, lr=1e-3,
                      warmup_steps=40, eval_every=0, progress=False, seed=seed)
    trainer = Trainer(net, obj, ds, cfg)
    t0 = time.time(); hist = trainer.fit()
    return trainer.raw_model.eval(), time.time() - t0, hist[-1]['loss']


@torch.no_grad()
def solve(net, vocab, kind, given, rows, n):
    "Greedy answers (R, n) to the puzzles of `rows` (-1 where not a switch); diffusion: one token per pass."
    task = Links(n, given=given)
    prompts = torch.tensor([[vocab.bos_id] + vocab.encode(task.pair(x)[0]) for x in rows])
    if kind == 'autoregressive': out = generate_ar(net, prompts, n + 1, eos_id=vocab.eos_id)
    else: out = generate(net, prompts, n + 1, n + 1, n + 1, mask_id=vocab.mask_id)
    digits = {vocab.encode(f' {v}')[0]: v for v in (0, 1)}
    return torch.tensor([[digits.get(i, -1) for i in row[prompts.shape[1]:][:n].tolist()] for row in out])


def write_table(a, argv, t_all, rows, results):
    "Write the table of the runs so far (after every run: an interrupted benchmark keeps what it measured)."
    lines = ['# Where diffusion beats autoregression: the Links puzzle', '',
             f'Command: `{command_line(argv)}`', '',
             'Machine: ' + ' · '.join(f'{k} {v}' for k, v in machine_info(torch.device('cpu')).items()) +
             f' · total {time.time() - t_all:.0f} s', '',
             f'{a.n} switches (bits), the last given (or the first, for the mirrored row); {len(rows)} test '
             f'puzzles, never '
             f'trained on. Each model: d_model {a.d_model}, {a.n_layer} layers, {a.steps} steps of {a.batch}, lr 1e-3, '
             'one seed '
             'per run (init and data order). Greedy decoding; diffusion one token per pass, low-confidence order.', '',
             '| model | given | seed | solved | links kept | switch 1 right | train s | final loss |',
             '|---|---|---|---|---|---|---|---|']
    lines += [f"| {r['model']} | {r['given']} | {r['seed']} | {r['solved']:.1%} | {r['links_kept']:.1%} | "
              f"{r['first_right']:.1%} | {r['train_s']:.0f} | {r['final_loss']:.3f} |" for r in results]
    lines += ['', '| model | given | seeds | solved, mean (min-max) |', '|---|---|---|---|']
    for kind, given in RUNS:
        s = [r['solved'] for r in results if (r['model'], r['given']) == (kind, given)]
        if not s: continue
        lines.append(f"| {kind} | {given} | {len(s)} | {statistics.mean(s):.1%} ({min(s):.1%}-{max(s):.1%}) |")
    md = '\n'.join(lines) + '\n'
    write_results(a.out, 'order_bench', dict(args=vars(a), results=results), md)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--seeds', type=int, nargs='+', default=[1, 2, 0], help='training seeds (init and data order)')
    p.add_argument('--steps', type=int, default=800, help='optimizer steps per model')
    p.add_argument('--batch', type=int, default=64, help='sequences per step')
    p.add_argument('--n', type=int, default=10, help='switches per row')
    p.add_argument('--d-model', type=int, default=128)
    p.add_argument('--n-layer', type=int, default=2)
    p.add_argument('--threads', type=int, default=1, help='torch threads')
    p.add_argument('--out', default=str(HERE / 'results'), help='folder for order_bench.md / .json')
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    t_all = time.time()
    vocab = train_vocab(Links(a.n).examples(1000) + Links(a.n, given='first').examples(1000), n_text=300)
    L = 1 + max(len(vocab.encode(Links(a.n, given=g).pair([0] * a.n)[0])) for g in ('last', 'first')) + a.n + 1
    rows = [list(x) for x in product((0, 1), repeat=a.n) if Links.is_test(list(x))]
    truth = torch.tensor(rows)
    results = []
    for seed in a.seeds:
        for kind, given in RUNS:
            net, secs, loss = train(vocab, L, kind, given, a, seed)
            ans = solve(net, vocab, kind, given, rows, a.n)
            kept = (((ans[:, :-1] ^ ans[:, 1:]) == (truth[:, :-1] ^ truth[:, 1:])).all(1) & (ans >= 0).all(1))
            r = dict(seed=seed, model=kind, given=given, solved=(ans == truth).all(1).float().mean().item(),
                     links_kept=kept.float().mean().item(),
                     first_right=(ans[:, 0] == truth[:, 0]).float().mean().item(),
                     train_s=round(secs, 1), final_loss=loss)
            results.append(r)
            print(f"seed {seed} {kind:>14} {given:>5}: solved {r['solved']:.1%}, links kept {r['links_kept']:.1%}, "
                  f"switch 1 right {r['first_right']:.1%} ({secs:.0f} s, loss {loss:.3f})", flush=True)
            write_table(a, argv, t_all, rows, results)


if __name__ == '__main__':
    main()
