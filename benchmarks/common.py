"Helpers shared by the benchmark scripts: device sync, machine description, the reproducible command line, profile defaults."
from __future__ import annotations
import datetime, os, platform, shlex, sys
from pathlib import Path
import torch


def sync(dev):
    "Wait for queued GPU work so wall-clock timings are honest (no-op on CPU)."
    if dev.type == 'cuda': torch.cuda.synchronize(dev)


def machine_info(dev) -> dict:
    "What the numbers were measured on: torch, Python, CPU model, threads, load at start, GPU name."
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'): cpu = line.split(':', 1)[1].strip(); break
    except OSError: pass
    info = dict(torch=torch.__version__, python=platform.python_version(), device=str(dev), cpu=cpu, torch_threads=torch.get_num_threads(),
                date=datetime.datetime.now().isoformat(timespec='seconds'), cpu_count=os.cpu_count())
    try: info['load_avg_1m_at_start'] = os.getloadavg()[0]
    except (OSError, AttributeError): pass
    if dev.type == 'cuda': info['gpu'] = torch.cuda.get_device_name(dev)
    return info


def command_line(argv=None) -> str:
    "The command that reproduces this run, shell-quoted."
    return 'python ' + ' '.join(shlex.quote(s) for s in ([sys.argv[0]] + (sys.argv[1:] if argv is None else list(argv))))


def apply_profile(args, profile: dict):
    "Fill every flag left at None from `profile` (the full or the --quick defaults); flags given explicitly win."
    for k, v in profile.items():
        if getattr(args, k) is None: setattr(args, k, v)
    return args


def add_run_flags(p, results_dir: Path):
    "The flags every benchmark shares: --seed, --device, --threads, --progress, --out-dir."
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--device', default=None, help='cpu, cuda, ... (default: cuda if available)')
    p.add_argument('--threads', type=int, default=0, help='torch.set_num_threads (0: torch default)')
    p.add_argument('--progress', action='store_true')
    p.add_argument('--out-dir', default=str(results_dir))
    return p


def seen_prompts(train_ds, steps: int, B: int, seed: int) -> set[str]:
    "Task prompts the Trainer drew in `steps` steps of `B` sequences (the order of `Trainer._batch` on one process)."
    from mmdiff.train import batch_indices
    from mmdiff.data import TaskDataset
    seen, offs = set(), [0] + list(train_ds.cumulative_sizes)
    for m in range(steps):
        for i in batch_indices(len(train_ds), m, B, seed=seed):
            for d, lo in zip(train_ds.datasets, offs):
                if lo <= i < lo + len(d):
                    if isinstance(d, TaskDataset): seen.add(d.pair(i - lo)[0])
                    break
    return seen


def start_run(a, argv, title: str):
    "Common start of a benchmark run: threads, device, machine info, seed, a banner. Returns (command, t0, device, machine info)."
    from mmdiff.core import get_device, seed_everything
    import time
    command = command_line(argv)
    if a.threads: torch.set_num_threads(a.threads)
    t0, dev = time.perf_counter(), get_device(a.device)
    mi = machine_info(dev)
    print(f"mmdiff {title}{' (quick)' if a.quick else ''}: torch {mi['torch']}, device {dev}, {mi['torch_threads']} threads", flush=True)
    seed_everything(a.seed)
    return command, t0, dev, mi


def jsonl_run_or_table(a, name: str, run, table):
    """The one-run-per-call scripts: with `a.table`, turn `<a.out_dir>/<name>.jsonl` into `<name>.md` (`table(rows) -> str`);
    otherwise `run(a) -> dict` on `a.threads` torch threads, print it as a JSON line and append it to the .jsonl."""
    import json
    from mmdiff.core import atomic_write_text
    log = Path(a.out_dir) / f'{name}.jsonl'
    if a.table:
        md = table([json.loads(l) for l in log.read_text().splitlines() if l.strip()])
        atomic_write_text(Path(a.out_dir) / f'{name}.md', md); print(md); return
    torch.set_num_threads(a.threads)
    res = run(a); print(json.dumps(res), flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, 'a') as f: f.write(json.dumps(res) + '\n')


def write_results(out_dir, stem: str, res: dict, md: str):
    "Write a run's table `md` and numbers `res` to out_dir/stem.md and .json (atomically, readable by all) and print it."
    import json
    from mmdiff.core import atomic_write_text
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / f'{stem}.md', md)
    atomic_write_text(out / f'{stem}.json', json.dumps(res, indent=2, default=str))
    for f in ('.md', '.json'): (out / (stem + f)).chmod(0o644)
    print('\n' + md + f"\nwritten {out / stem}.md and .json", flush=True)
