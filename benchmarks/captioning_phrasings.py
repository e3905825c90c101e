"""Captioning with one phrasing per digit vs several: `mmdiff train --images` on the embedded digits (8x8, written as
16x16 PNG files), captions either all "a handwritten digit d" or one of the 6 `DIGIT_TEMPLATES` drawn at random per
image; the same steps, the same everything else. Judged on the 297 test digits (the digit named in the caption), and by
how much the captioning loss changes when the images of a batch are shuffled (0 = the captioner ignores the image).

    python benchmarks/captioning_phrasings.py                 # 800 steps per run, ~4 min on 2 cores
    python benchmarks/captioning_phrasings.py --steps 3000
"""
from __future__ import annotations
import argparse, json, subprocess, sys, tempfile
from pathlib import Path
import numpy as np
import torch
from PIL import Image
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, command_line, write_results


def folder(d: Path, phrasing: str, seed: int = 0) -> Path:
    from mmdiff.data import digits, digit_caption, DIGIT_TEMPLATES
    imgs, labels = digits('train')
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True)
    lines = []
    for i, (im, y) in enumerate(zip(imgs.numpy(), labels.tolist())):
        Image.fromarray(np.kron(im, np.ones((2, 2), np.uint8))).save(d / f'{i}.png')
        cap = digit_caption(y) if phrasing == 'one' else DIGIT_TEMPLATES[rng.integers(len(DIGIT_TEMPLATES))].format(d=y)
        lines.append(json.dumps({'file_name': f'{i}.png', 'text': cap}))
    (d / 'metadata.jsonl').write_text('\n'.join(lines) + '\n')
    return d


@torch.no_grad()
def image_use(pipe, run: Path, n: int = 128, seed: int = 0) -> tuple[float, float]:
    "Captioning loss on n training items with their own images and with the images shuffled (all answer tokens masked)."
    from mmdiff.data import format_mmu, as_hwc, encode_images
    from mmdiff.sources import PreparedImages
    prep = PreparedImages(run / 'data', json.loads((run / 'data' / 'images.json').read_text()))
    px = torch.from_numpy(np.array(prep.pixels()[:n]))
    codes = encode_images(pipe.tokenizer, as_hwc(px))
    def loss(order):
        items = [format_mmu(pipe.vocab, codes[j], t, pipe.cfg.seq_len, '', px[j] if pipe.model.reader is not None else None)
                 for j, t in zip(order, prep.texts[:n])]
        b = {k: torch.stack([it[k] for it in items]) for k in items[0]}
        ids, ans = b['ids'].clone(), ~b['prompt']
        ids[ans] = pipe.vocab.mask_id
        kw = {k: b[k] for k in ('pixels', 'pixel_slots') if k in b}
        lg = pipe.model(ids, modality=b['modality'], **kw)
        return torch.nn.functional.cross_entropy(lg[ans], b['ids'][ans]).item()
    return loss(list(range(n))), loss(torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--steps', type=int, default=800)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out-dir', default=str(Path(__file__).resolve().parent / 'results'))
    a = p.parse_args(argv)
    from mmdiff.pipeline import MMDiff
    from mmdiff.data import digits, digit_label_from_text
    work = Path(tempfile.mkdtemp(prefix='mmdiff_phrasings_'))
    tx, ty = digits('test')
    rows = []
    for phrasing in ('one', 'six'):
        run = work / f'run_{phrasing}'
        cmd = ['mmdiff', 'train', '--images', str(folder(work / phrasing, phrasing, a.seed)), '--out', str(run), '--image-size', '16',
               '--train.max-steps', str(a.steps), '--train.eval-every', '0', '--image.tok-steps', '400', '--seed', str(a.seed), '--no-progress']
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode: sys.exit(r.stderr[-3000:])
        pipe = MMDiff.from_pretrained(run, device='cpu')
        caps = pipe.caption(tx.numpy(), steps=8)
        acc = float(np.mean([digit_label_from_text(c) == y for c, y in zip(caps, ty.tolist())]))
        own, shuffled = image_use(pipe, run)
        rows.append(dict(phrasing=phrasing, caption_acc=acc, loss_own=own, loss_shuffled=shuffled, examples=caps[:4]))
        print(json.dumps(rows[-1]), flush=True)
    L = ["# Captioning: one phrasing per digit vs six", "", f"Command: `{command_line(argv)}`", "",
         f"`mmdiff train --images` on the 1,500 training digits (16x16 PNG), {a.steps} steps, defaults otherwise; judged on the "
         "297 test digits. Loss: captioning cross-entropy of all answer tokens masked, on 128 training items, with their own "
         "images and with the images shuffled.", "",
         "| captions | held-out caption accuracy | loss, own images | loss, shuffled images | first captions |", "|---|---|---|---|---|"]
    for r in rows:
        L.append(f"| {'one phrasing' if r['phrasing'] == 'one' else 'six phrasings, one drawn per image'} | {r['caption_acc']:.1%} | "
                 f"{r['loss_own']:.3f} | {r['loss_shuffled']:.3f} | {', '.join(repr(c) for c in r['examples'])} |")
    L += ["", "Machine: " + json.dumps(machine_info(torch.device('cpu')))]
    write_results(Path(a.out_dir), 'captioning_phrasings', dict(rows=rows, args=vars(a)), '\n'.join(L) + '\n')


if __name__ == '__main__':
    main()
