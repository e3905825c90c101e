#!/usr/bin/env python
"""The data path of `mmdiff train` (your own text): training throughput through the prepared token files, peak memory of
the whole command on large corpora, and the cost of drawing batch indices.

1. **Data path overhead.** The same model (`Denoiser`, masked diffusion) is trained by `mmdiff.train.Trainer` with its
   batches coming either from the real path (prepared `train.bin` -> `PreparedText.windows` (`TokenWindows`, a memmap)
   -> DataLoader with `MicroBatches` -> model), with `workers=0` and `workers=1`, or from one pre-built batch kept in
   memory and reused every step (a `Trainer` whose `_next_batch` returns it: the same forward, backward, clipping and
   AdamW step, no data work at all). The three trainers live in one process and run in alternating blocks of
   `--steps` steps (the order rotates each repetition), after `--warmup` untimed steps each; only `train_step()` calls
   are timed (the per-step logging of `fit` is left out on both sides). Medians over `--reps` blocks. The data path is
   also timed alone (DataLoader batches with no model). Target: real / in-memory >= 0.95.
2. **Memory.** `mmdiff train --text CORPUS --out OUT` runs as a subprocess (the installed console script) on
   generated corpora (random sentences over a fixed pseudo-word list with numbers, many lines, several .txt files;
   deterministic from `--seed`) of `--mem-sizes` MB, with a small model and `--mem-steps` steps so that data
   preparation dominates; the BPE is trained on the default `--data.tokenizer-sample-mb` (64). Peak RSS comes from
   `/usr/bin/time -v` (the kernel's maximum resident set of the largest process) and from polling the process tree
   every 0.1 s (sum of RSS); phases are timed from the progress bars on stderr and from files appearing in OUT/data.
   Target: peak RSS < 3 GB and not growing with the corpus size.
3. **Batch indices.** `batch_indices` (a cached per-epoch `epoch_permutation`) against drawing `torch.randperm(n)` for
   every micro-batch (the old behaviour), at n = `--perm-n`.

Torch runs on `--threads` threads (default 1) in this process, and `mmdiff train` gets `OMP_NUM_THREADS=--threads`:
on a shared 2-core machine, 2 OpenMP threads on busy cores make a small model's step several times slower and wildly
variable (measured here: 1.6 - 9.3 s per step with 2 threads against 1.0 - 1.9 s with 1, while another job ran), which
would drown the few-percent effect this measures; with 1 thread and workers=1 the DataLoader worker has a core of its own.
Corpora and run folders go into a temporary folder under `--tmp` (default: the system's) that is deleted at the end.

    python benchmarks/bench_data.py --quick     # smoke test, about a minute (writes data_bench.quick.*)
    python benchmarks/bench_data.py             # the real measurements (100 MB and 1 GB corpora; ~25-35 min on a 2-core CPU)
    python benchmarks/bench_data.py --skip-memory   # only the throughput and batch-index parts (~5 min)
    python benchmarks/bench_data.py --replot    # only rewrite data_bench.md from data_bench.json
    python benchmarks/bench_data.py --threads 2 --out-dir /tmp/x   # the same on 2 torch threads (a quiet machine only)
"""
from __future__ import annotations
import argparse, json, math, os, re, shutil, statistics, subprocess, sys, tempfile, threading, time
from pathlib import Path
import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import write_results, machine_info, command_line, apply_profile, sync   # noqa: E402

# the model of the memory runs is small, so that the command is dominated by data preparation
MEM_TRAIN_ARGS = '--preset tiny --model.d-model 64 --model.n-layer 2 --model.n-head 2 --data.seq-len 128 --train.batch-size 8'
FULL = dict(d_model=128, n_layer=4, n_head=4, seq_len=256, batch_size=16, reps=10, steps=4, warmup=3, tput_mb=20,
            perm_n=2_000_000, mem_sizes='100,1000', mem_steps=50, mem_train_args=MEM_TRAIN_ARGS)
QUICK = dict(d_model=64, n_layer=2, n_head=2, seq_len=64, batch_size=8, reps=2, steps=2, warmup=1, tput_mb=3,
             perm_n=200_000, mem_sizes='3,6', mem_steps=3, mem_train_args=MEM_TRAIN_ARGS + ' --data.n-samples 0 --train.eval-batches 1')


# ---------------------------------------------------------------- the generated corpus
def _word_pool(seed: int, n_words: int = 30_000, n_numbers: int = 20_000):
    "A fixed list of pseudo-words (consonant-vowel syllables) and number strings (small ints, years, decimals, 1,234,567)."
    rng = np.random.default_rng([seed, 12345])
    cons = list('bcdfghjklmnprstvwz') + ['th', 'sh', 'ch', 'st', 'tr', 'br']
    vow = ['a', 'e', 'i', 'o', 'u', 'ea', 'ou', 'ai']
    words = set()
    while len(words) < n_words:
        k = int(rng.integers(1, 5))
        words.add(''.join(cons[rng.integers(len(cons))] + vow[rng.integers(len(vow))] for _ in range(k))
                  + (cons[rng.integers(len(cons))] if rng.random() < .4 else ''))
    words = sorted(words)
    rng.shuffle(words)
    nums = []
    for _ in range(n_numbers):
        r = rng.random()
        nums.append(str(rng.integers(0, 100)) if r < .4 else str(rng.integers(1700, 2030)) if r < .6 else
                    f"{rng.integers(0, 1000)}.{rng.integers(0, 100):02d}" if r < .8 else f"{rng.integers(1000, 10**7):,}")
    return words, nums


def write_corpus(folder: Path, total_bytes: float, n_files: int, seed: int = 0) -> dict:
    """`n_files` UTF-8 .txt files of about `total_bytes` bytes in all: sentences of Zipf-distributed pseudo-words (10 %
    numbers, some commas and capitals), one sentence a line. Deterministic from `seed`."""
    words, nums = _word_pool(seed)
    base = np.array(words + nums, dtype=object)
    V = len(base)
    zipf = 1 / (np.arange(len(words)) + 2.7)
    p = np.concatenate([zipf / zipf.sum() * 0.9, np.full(len(nums), 0.1 / len(nums))])
    pool = np.concatenate([base, base + ',', base + '.\n', np.char.capitalize(base.astype(str)).astype(object)])
    folder.mkdir(parents=True, exist_ok=True)
    t0, size, lines = time.perf_counter(), 0, 0
    per_file = total_bytes / n_files
    for f in range(n_files):
        rng = np.random.default_rng([seed, f])
        with open(folder / f'part{f:03d}.txt', 'w', encoding='utf-8') as fh:
            written = 0
            while written < per_file:
                k = 50_000
                idx = rng.choice(V, size=k, p=p)
                var = rng.choice(4, size=k, p=[.86, .05, .06, .03])       # plain, 'word,', 'word.\n', 'Word'
                text = (' '.join(pool[idx + var * V].tolist()) + '.\n').replace('\n ', '\n')
                b = text.encode()
                fh.write(text); written += len(b); lines += text.count('\n')
        size += written
    return dict(bytes=size, files=n_files, lines=lines, seconds=time.perf_counter() - t0)


# ---------------------------------------------------------------- 3. batch indices
def bench_batch_indices(n: int, batch_size: int, seed: int, cached_batches: int = 2000, old_batches: int = 20) -> dict:
    from mmdiff.train import batch_indices, epoch_permutation
    epoch_permutation.cache_clear()
    t = time.perf_counter(); batch_indices(n, 0, batch_size, seed=seed); first = time.perf_counter() - t   # draws the permutation
    t = time.perf_counter()
    for m in range(1, cached_batches + 1): batch_indices(n, m, batch_size, seed=seed)
    cached = (time.perf_counter() - t) / cached_batches
    g = torch.Generator().manual_seed(seed)
    t = time.perf_counter()
    for m in range(old_batches): torch.randperm(n, generator=g)[:batch_size].tolist()
    old = (time.perf_counter() - t) / old_batches
    return dict(n=n, batch_size=batch_size, first_batch_ms=first * 1e3, cached_batch_ms=cached * 1e3, randperm_per_batch_ms=old * 1e3,
                cached_batches=cached_batches, old_batches=old_batches)


# ---------------------------------------------------------------- 1. data path overhead
def bench_throughput(a, tmp: Path) -> dict:
    from mmdiff.sources import check_corpus, corpus_vocab, prepare_text
    from mmdiff.model import Denoiser, ModelConfig
    from mmdiff.loss import MaskedDiffusion
    from mmdiff.train import Trainer, TrainConfig, MicroBatches, collate

    class InMemoryTrainer(Trainer):
        "The same Trainer, fed one pre-built batch (already on the device) at every micro-batch."
        fixed: dict = None
        def _next_batch(self) -> dict: return self.fixed

    t0 = time.perf_counter()
    gen = write_corpus(tmp / 'tput_corpus', a.tput_mb * 1e6, 2, a.seed)
    corpus = check_corpus([str(tmp / 'tput_corpus')])
    vocab = corpus_vocab(corpus, 4096)
    prep = prepare_text(corpus, vocab, tmp / 'tput_data', progress=False)
    ds = prep.windows('train', a.seq_len, vocab)
    setup_s = time.perf_counter() - t0
    print(f"  prepared {gen['bytes'] / 1e6:.0f} MB -> {prep.meta['n_train']:,} train tokens, {len(ds):,} windows of {a.seq_len} "
          f"({setup_s:.0f} s)", flush=True)

    obj = MaskedDiffusion(vocab.mask_id)
    mcfg = ModelConfig(vocab_size=vocab.vocab_size, max_len=a.seq_len, d_model=a.d_model, n_layer=a.n_layer, n_head=a.n_head)
    kinds = ['in-memory batch', 'real path, workers=0', 'real path, workers=1']
    trainers = {}
    for k in kinds:
        torch.manual_seed(a.seed)
        cfg = TrainConfig(out_dir=str(tmp / 'tput_run'), max_steps=10**6, batch_size=a.batch_size, workers=1 if k.endswith('=1') else 0,
                          progress=False, eval_every=0, seed=a.seed, cpu=a.device == 'cpu')
        cls = InMemoryTrainer if k.startswith('in-memory') else Trainer
        trainers[k] = tr = cls(Denoiser(mcfg), obj, ds, cfg)
        if cls is InMemoryTrainer: tr.fixed = tr._batch(ds, 0, a.seed)     # a real batch of the same windows, built once
    dev = trainers[kinds[0]].acc.device
    params = trainers[kinds[0]].raw_model.num_params()
    for k, tr in trainers.items():                                           # warm-up: lazy init, DataLoader worker start
        for _ in range(a.warmup): tr.train_step()
        sync(dev)
    tok_per_step = a.batch_size * a.seq_len
    blocks = {k: [] for k in kinds}
    step_ms = {k: [] for k in kinds}
    for r in range(a.reps):
        order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]
        for k in order:
            tr = trainers[k]
            tb = time.perf_counter()
            for _ in range(a.steps):
                ts = time.perf_counter(); tr.train_step(); sync(dev); step_ms[k].append((time.perf_counter() - ts) * 1e3)
            blocks[k].append(a.steps * tok_per_step / (time.perf_counter() - tb))
        print(f"  rep {r + 1}/{a.reps}: " + ', '.join(f"{k} {blocks[k][-1]:.0f} tok/s" for k in kinds), flush=True)

    # the data path alone: DataLoader batches (the Trainer's loader settings) with no model
    alone = {}
    for w in (0, 1):
        loader = torch.utils.data.DataLoader(ds, batch_sampler=MicroBatches(len(ds), a.batch_size, seed=a.seed + 1), collate_fn=collate,
                                             num_workers=w, prefetch_factor=4 if w else None)
        it = iter(loader)
        for _ in range(5): next(it)
        n = 200
        t = time.perf_counter()
        for _ in range(n): next(it)
        alone[w] = (time.perf_counter() - t) / n * 1e3
        del it, loader
    base = statistics.median(blocks[kinds[0]])
    rows = []
    for k in kinds:
        med = statistics.median(blocks[k])
        paired = [x / b for x, b in zip(blocks[k], blocks[kinds[0]])]
        rows.append(dict(source=k, tok_per_s_median=med, tok_per_s_min=min(blocks[k]), tok_per_s_max=max(blocks[k]),
                         step_ms_median=statistics.median(step_ms[k]), ratio_of_medians=med / base,
                         paired_ratio_median=statistics.median(paired), paired_ratio_min=min(paired), paired_ratio_max=max(paired),
                         blocks_tok_per_s=blocks[k], step_ms=step_ms[k]))
    for w in (0, 1): trainers[kinds[1 + w]]._batches = None                  # stop the worker
    return dict(rows=rows, params=params, tokens_per_step=tok_per_step, windows=len(ds), train_tokens=prep.meta['n_train'],
                corpus_bytes=gen['bytes'], setup_s=setup_s, data_path_alone_ms=alone, device=str(dev))


# ---------------------------------------------------------------- 2. memory of `mmdiff train`
def _mmdiff_exe() -> str:
    exe = Path(sys.executable).parent / 'mmdiff'      # the console script of this interpreter (not a pyenv shim)
    if exe.exists(): return str(exe)
    found = shutil.which('mmdiff')
    if not found: raise SystemExit("the `mmdiff` console script is not installed (pip install -e .)")
    return found


def _tree_rss(proc) -> tuple[int, dict]:
    "(sum of RSS in bytes over the descendants of `proc`, {pid: VmHWM bytes})."
    import psutil
    total, hwm = 0, {}
    try: kids = proc.children(recursive=True)
    except psutil.Error: return 0, hwm
    for c in kids:
        try:
            total += c.memory_info().rss
            for line in Path(f'/proc/{c.pid}/status').read_text().splitlines():
                if line.startswith('VmHWM:'): hwm[c.pid] = int(line.split()[1]) * 1024
        except (psutil.Error, OSError): pass
    return total, hwm


def run_train(corpus: Path, out: Path, steps: int, threads: int, extra: str) -> dict:
    "Run `mmdiff train` on `corpus` into `out`; peak memory, phase times and the prepared data's size."
    import psutil
    cmd = [_mmdiff_exe(), 'train', '--text', str(corpus), '--out', str(out), '--train.max-steps', str(steps), *extra.split()]
    timer = ['/usr/bin/time', '-v'] if Path('/usr/bin/time').exists() else []
    env = {**os.environ, 'OMP_NUM_THREADS': str(threads)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(timer + cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    markers = {'check_start': 'checking text', 'check_end': 'checking text: 100%', 'tok_start': 'tokenizing',
               'tok_bar_end': 'tokenizing: 100%', 'train_bar': 'train:'}
    seen, bufs = {}, {'out': bytearray(), 'err': bytearray()}

    def reader(stream, name):
        while chunk := os.read(stream.fileno(), 1 << 16):
            now = time.perf_counter() - t0
            bufs[name] += chunk
            if name == 'err':
                tail = bufs[name][-(len(chunk) + 64):].decode('utf-8', 'replace')
                for k, m in markers.items():
                    if k not in seen and m in tail: seen[k] = now
    threads_ = [threading.Thread(target=reader, args=(proc.stdout, 'out'), daemon=True),
                threading.Thread(target=reader, args=(proc.stderr, 'err'), daemon=True)]
    for th in threads_: th.start()
    files = {'vocab': out / 'data' / 'vocab_key.json', 'meta': out / 'data' / 'meta.json', 'run_json': out / 'run.json'}
    ps, timeline, hwm_all = psutil.Process(proc.pid), [], {}
    while proc.poll() is None:
        now = time.perf_counter() - t0
        rss, hwm = _tree_rss(ps)
        timeline.append((now, rss))
        for pid, v in hwm.items(): hwm_all[pid] = max(hwm_all.get(pid, 0), v)
        for k, f in files.items():
            if k not in seen and f.exists(): seen[k] = now
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    for th in threads_: th.join(timeout=10)
    err = bufs['err'].decode('utf-8', 'replace')
    if proc.returncode != 0:
        raise SystemExit(f"mmdiff train failed (exit {proc.returncode}):\n{err[-4000:]}")
    m = re.search(r'Maximum resident set size \(kbytes\): (\d+)', err)
    meta = json.loads((out / 'data' / 'meta.json').read_text())
    result = json.loads(bufs['out'].decode().strip().splitlines()[-1])
    # phases: startup (imports) | check | BPE on the sample | tokenize | model, training, evaluation, samples, saves
    edges = [('startup', 0.0, seen.get('check_start')), ('check', seen.get('check_start'), seen.get('check_end')),
             ('bpe', seen.get('check_end'), seen.get('tok_start')), ('tokenize', seen.get('tok_start'), seen.get('meta')),
             ('train_and_save', seen.get('meta'), wall)]
    phases = {name: (b - a_ if a_ is not None and b is not None else None) for name, a_, b in edges}
    peak_by_phase = {name: max((r for t, r in timeline if a_ is not None and b is not None and a_ <= t <= b), default=None)
                     for name, a_, b in edges}
    return dict(command=' '.join(cmd), wall_s=wall, phases_s=phases, marks_s=seen,
                peak_rss_kernel_bytes=int(m.group(1)) * 1024 if m else None,
                peak_vmhwm_bytes=max(hwm_all.values(), default=None),
                peak_rss_sampled_tree_bytes=max((r for _, r in timeline), default=None), peak_rss_sampled_by_phase=peak_by_phase,
                n_train=meta['n_train'], n_val=meta['n_val'], n_bytes=meta['n_bytes'], n_docs=meta['n_docs'],
                tokenize_mb_per_s=meta['n_bytes'] / 1e6 / phases['tokenize'] if phases['tokenize'] else None,
                train_bin_bytes=(out / 'data' / 'train.bin').stat().st_size, result=result, omp_threads=threads,
                stderr_tail=err[-1500:])


def bench_memory(a, tmp: Path) -> list[dict]:
    rows = []
    for size_mb in [float(s) for s in a.mem_sizes.split(',') if s]:
        free = shutil.disk_usage(tmp).free
        if free < 2.5 * size_mb * 1e6: raise SystemExit(f"{tmp}: {free / 1e9:.1f} GB free, too little for a {size_mb:g} MB corpus")
        n_files = max(2, min(10, math.ceil(size_mb / 25)))
        corpus, out = tmp / f'corpus_{size_mb:g}MB', tmp / f'run_{size_mb:g}MB'
        print(f"  generating {size_mb:g} MB in {n_files} files ...", flush=True)
        gen = write_corpus(corpus, size_mb * 1e6, n_files, a.seed)
        print(f"  mmdiff train on {gen['bytes'] / 1e6:.0f} MB ({gen['seconds']:.0f} s to generate) ...", flush=True)
        r = run_train(corpus, out, a.mem_steps, a.threads, a.mem_train_args)
        r.update(size_mb=size_mb, corpus=gen)
        rows.append(r)
        mb = lambda b: f"{b / 2**20:.0f} MB" if b else 'n/a'
        print(f"  {size_mb:g} MB: {r['wall_s']:.0f} s, peak RSS {mb(r['peak_rss_kernel_bytes'])} (kernel), "
              f"{mb(r['peak_rss_sampled_tree_bytes'])} (sampled tree); phases "
              + ', '.join(f"{k} {v:.1f} s" for k, v in r['phases_s'].items() if v is not None), flush=True)
        shutil.rmtree(corpus); shutil.rmtree(out)
    return rows


# ---------------------------------------------------------------- report
def _f(x, fmt='{:.1f}'): return 'n/a' if x is None else fmt.format(x)


def markdown(res: dict) -> str:
    a = res['args']
    quick = ' (QUICK smoke test: not a result)' if a['quick'] else ''
    mi = res['machine']
    L = [f"# The data path of `mmdiff train`{quick}", '', f"`{res['command']}`", '',
         f"Machine: {mi['cpu']}, {mi['cpu_count']} cores, torch {mi['torch']} on {mi['torch_threads']} thread(s) (this process; "
         f"`mmdiff train` ran with OMP_NUM_THREADS={a['threads']}), Python {mi['python']}, load average {mi.get('load_avg_1m_at_start', 0):.2f} "
         f"at start ({res['load_avg_1m_at_end']:.2f} at the end: the machine is shared), {mi['date']}. Total run time {res['total_s'] / 60:.1f} min.", '']
    targets = []
    if 'throughput' in res:
        t = res['throughput']
        L += ['## 1. Training throughput: real data path vs one in-memory batch', '',
              f"Model: d_model {a['d_model']}, {a['n_layer']} layers, {a['n_head']} heads ({t['params'] / 1e6:.2f} M parameters), "
              f"masked diffusion, seq_len {a['seq_len']}, batch {a['batch_size']} ({t['tokens_per_step']} tokens/step), AdamW, on {t['device']}. "
              f"Data: a generated {t['corpus_bytes'] / 1e6:.0f} MB corpus prepared into {t['train_tokens']:,} train tokens "
              f"({t['windows']:,} windows). {a['reps']} repetitions of {a['steps']} timed steps per source, alternating "
              f"(order rotated), after {a['warmup']} warm-up steps each; only `Trainer.train_step()` is timed.", '',
              '| batch source | tok/s (median) | tok/s (min - max) | ms/step (median) | median / in-memory median | paired ratio per repetition: median (min - max) |',
              '|---|---|---|---|---|---|']
        for r in t['rows']:
            L.append(f"| {r['source']} | {r['tok_per_s_median']:.0f} | {r['tok_per_s_min']:.0f} - {r['tok_per_s_max']:.0f} | "
                     f"{r['step_ms_median']:.0f} | {r['ratio_of_medians']:.3f} | {r['paired_ratio_median']:.3f} "
                     f"({r['paired_ratio_min']:.3f} - {r['paired_ratio_max']:.3f}) |")
        al = {int(k): v for k, v in t['data_path_alone_ms'].items()}     # int keys, or str ones read back from the .json
        step0 = t['rows'][0]['step_ms_median']
        L += ['', f"The data path alone (DataLoader over `TokenWindows` with `MicroBatches`, no model): "
                  f"{al[0]:.2f} ms per micro-batch with workers=0, {al[1]:.2f} ms with workers=1 (prefetched), against "
                  f"{step0:.0f} ms for a training step: at most {al[0] / (step0 + al[0]) * 100:.2f} % of a step with workers=0.", '']
        r0, r1 = t['rows'][1], t['rows'][2]
        ok = lambda r: min(r['ratio_of_medians'], r['paired_ratio_median']) >= 0.95
        targets.append(f"**Target 1 (real path >= 0.95 x in-memory): {'met' if ok(r0) else 'NOT met'} with workers=0** "
                       f"(ratio of medians {r0['ratio_of_medians']:.3f}, paired median {r0['paired_ratio_median']:.3f}); "
                       f"{'met' if ok(r1) else 'NOT met'} with workers=1 ({r1['ratio_of_medians']:.3f}, {r1['paired_ratio_median']:.3f}).")
    if 'memory' in res:
        rows = res['memory']
        L += ['## 2. `mmdiff train` on a generated corpus: time and peak memory', '',
              f"Each run: `mmdiff train --text CORPUS_DIR --out OUT --train.max-steps {a['mem_steps']} {a['mem_train_args']}` "
              "(default `--data.tokenizer-sample-mb 64`, n_text 4096, progress bars on). Corpus: sentences of Zipf-distributed "
              "pseudo-words from a fixed list of 30,000 plus 20,000 number strings, one sentence a line, several .txt files. "
              "Phases from the progress bars on stderr and from OUT/data/vocab_key.json and meta.json appearing (0.1 s polling): "
              "startup = imports until the check starts; BPE = training the tokenizer on the first 64 MB and saving it; "
              "tokenize = writing train.bin / val.bin; train = building the model, the steps, the final evaluation, samples "
              "and saves.", '',
              '| corpus | files / lines | wall (s) | startup (s) | check (s) | BPE (s) | tokenize (s) | train + save (s) | tokenize MB/s | tokens in train.bin (val.bin) |',
              '|---|---|---|---|---|---|---|---|---|---|']
        for r in rows:
            p = r['phases_s']
            L.append(f"| {r['n_bytes'] / 1e6:.0f} MB | {r['corpus']['files']} / {r['corpus']['lines']:,} | {r['wall_s']:.1f} | "
                     f"{_f(p['startup'])} | {_f(p['check'])} | {_f(p['bpe'])} | {_f(p['tokenize'])} | {_f(p['train_and_save'])} | "
                     f"{_f(r['tokenize_mb_per_s'], '{:.2f}')} | {r['n_train']:,} ({r['n_val']:,}) |")
        big = rows[-1]
        if big['phases_s']['tokenize']:
            L += ['', f"Tokenizing is {big['phases_s']['tokenize'] / big['wall_s'] * 100:.0f} % of the {big['n_bytes'] / 1e6:.0f} MB run "
                      f"({big['phases_s']['tokenize'] / 60:.1f} of {big['wall_s'] / 60:.1f} min); the machine's load average was "
                      f"{res['machine'].get('load_avg_1m_at_start', 0):.1f} at the start and {res.get('load_avg_1m_at_end', 0):.1f} at the end "
                      f"(other jobs share its {res['machine']['cpu_count']} cores), so these rates are lower bounds for a quiet machine."]
        mb = lambda b: 'n/a' if b is None else f"{b / 2**20:.0f}"
        L += ['', '| corpus | peak RSS, kernel (`/usr/bin/time -v`, MB) | peak VmHWM of one process (MB) | peak sampled RSS of the process tree (MB) | sampled peak per phase: startup / check / BPE / tokenize / train (MB) |',
              '|---|---|---|---|---|']
        for r in rows:
            ph = r['peak_rss_sampled_by_phase']
            L.append(f"| {r['n_bytes'] / 1e6:.0f} MB | {mb(r['peak_rss_kernel_bytes'])} | {mb(r['peak_vmhwm_bytes'])} | "
                     f"{mb(r['peak_rss_sampled_tree_bytes'])} | " + ' / '.join(mb(ph[k]) for k in ('startup', 'check', 'bpe', 'tokenize', 'train_and_save')) + ' |')
        peaks = [r['peak_rss_kernel_bytes'] or r['peak_rss_sampled_tree_bytes'] for r in rows]
        under = all(p < 3 * 2**30 for p in peaks)
        growth = peaks[-1] / peaks[0] if len(peaks) > 1 else 1.0
        flat = growth < 1.10
        m = re.search(r'--data\.seq-len[ =](\d+)', a['mem_train_args'])
        L_ = int(m.group(1)) if m else 256
        win = [r['n_train'] // (L_ - 1) for r in rows]
        prep = lambda r: max(v for k, v in r['peak_rss_sampled_by_phase'].items() if k != 'train_and_save' and v is not None)
        L.append('')
        grow = 'met' if growth < 1.01 else f"nearly met (+{(growth - 1) * 100:.1f} %, see below)" if flat else 'NOT met'
        targets.append(f"**Target 2a (peak RSS < 3 GB): {'met' if under else 'NOT met'}; target 2b (not growing with the corpus size): "
                       f"{grow if len(peaks) > 1 else 'not measured (one size)'}**: peak "
                       + ', '.join(f"{p / 2**20:.0f} MB at {r['n_bytes'] / 1e6:.0f} MB" for p, r in zip(peaks, rows))
                       + (f" ({(peaks[-1] - peaks[0]) / 2**20:+.0f} MB, {(growth - 1) * 100:+.1f} %, from the smallest to the largest corpus)."
                          if len(peaks) > 1 else '.'))
        if len(rows) > 1:
            targets.append(f"Where the peak comes from: checking, the BPE and tokenizing stay at {prep(rows[0]) / 2**20:.0f} - "
                           f"{prep(rows[-1]) / 2**20:.0f} MB (sampled) whatever the corpus size; the peak is in the training phase "
                           "(torch, the model, the DataLoader, evaluation, samples), and what grows there is the cached "
                           "per-epoch permutation (`mmdiff.train.epoch_permutation`): "
                           f"{(peaks[-1] - peaks[0]) / max(1, win[-1] - win[0]):.1f} bytes of peak per extra window here "
                           f"({win[0]:,} -> {win[-1]:,} windows); the permutation is int32, 4 bytes per window (runs before "
                           "2026-12-01 drew it as int64 first: about 12 bytes).")
    b = res['batch_indices']
    L += ['## 3. Batch indices', '',
          '| n | batch | first batch of an epoch (draws the permutation, ms) | each later batch, cached permutation (ms) | `torch.randperm(n)` per batch, old (ms) | speed-up per batch |',
          '|---|---|---|---|---|---|',
          f"| {b['n']:,} | {b['batch_size']} | {b['first_batch_ms']:.1f} | {b['cached_batch_ms']:.4f} | {b['randperm_per_batch_ms']:.1f} | "
          f"{b['randperm_per_batch_ms'] / b['cached_batch_ms']:.0f}x |", '']
    L += ['## Targets', ''] + [f"- {t}" for t in targets] + ['']
    return '\n'.join(L)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Outputs: <out-dir>/data_bench.md and .json (.quick.* with --quick).")
    p.add_argument('--quick', action='store_true', help='tiny sizes: a smoke test of about a minute')
    for k in FULL:
        typ = str if k in ('mem_sizes', 'mem_train_args') else int
        p.add_argument('--' + k.replace('_', '-'), type=typ, default=None, help=f"default {FULL[k]!r} / quick {QUICK[k]!r}")
    p.add_argument('--skip-memory', action='store_true', help='leave out part 2 (the `mmdiff train` runs)')
    p.add_argument('--skip-throughput', action='store_true', help='leave out part 1')
    p.add_argument('--threads', type=int, default=1, help='torch threads here, OMP_NUM_THREADS of `mmdiff train` (default 1: see above)')
    p.add_argument('--device', default='cpu', help="the throughput part's device: cpu (default) or cuda")
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--tmp', default=tempfile.gettempdir(), help='where the temporary corpora and run folders go')
    p.add_argument('--out-dir', default=str(HERE / 'results'))
    p.add_argument('--replot', action='store_true', help='only rewrite data_bench.md (.quick.md with --quick) from the .json')
    a = p.parse_args(argv)
    if a.replot:
        stem = 'data_bench.quick' if a.quick else 'data_bench'
        res = json.loads((Path(a.out_dir) / f'{stem}.json').read_text())
        return write_results(a.out_dir, stem, res, markdown(res))
    a = apply_profile(a, QUICK if a.quick else FULL)
    torch.set_num_threads(a.threads)
    t_start = time.perf_counter()
    res = dict(command=command_line(argv), args=vars(a), machine=machine_info(torch.device(a.device)))
    print(f"mmdiff data bench{' (quick)' if a.quick else ''}: torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    with tempfile.TemporaryDirectory(prefix='mmdiff_data_bench_', dir=a.tmp) as tmp:
        tmp = Path(tmp)
        print(f"[3] batch indices at n = {a.perm_n:,}", flush=True)
        res['batch_indices'] = bench_batch_indices(a.perm_n, a.batch_size, a.seed)
        if not a.skip_throughput:
            print("[1] training throughput: real data path vs in-memory batch", flush=True)
            res['throughput'] = bench_throughput(a, tmp)
        if not a.skip_memory:
            print(f"[2] mmdiff train: peak memory on {a.mem_sizes} MB corpora", flush=True)
            res['memory'] = bench_memory(a, tmp)
    res['total_s'] = time.perf_counter() - t_start
    res['load_avg_1m_at_end'] = os.getloadavg()[0]
    stem = 'data_bench.quick' if a.quick else 'data_bench'
    write_results(a.out_dir, stem, res, markdown(res))


if __name__ == '__main__':
    main()
