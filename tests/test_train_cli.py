"""`mmdiff train` on a user's own text, run as a user runs it (the installed console scripts, as subprocesses): a text
folder -> a trained pipeline that `MMDiff.from_pretrained` loads and `mmdiff generate-text` samples from; block-wise and
causal attention; resume equals an uninterrupted run; two processes under `accelerate launch` equal one process at the
same global batch; bad input stops the run before training with the list of bad records."""
import json, os, shutil, socket, subprocess, sys
from pathlib import Path
import pytest
import torch
from safetensors.torch import load_file
from mmdiff.pipeline import MMDiff

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'ACCELERATE_USE_CPU': '1', 'PYTHONPATH': str(ROOT)}
TINY = ['--data.seq-len', '32', '--data.n-text', '300', '--data.n-samples', '2', '--model.d-model', '32', '--model.n-layer', '2',
        '--model.n-head', '2', '--train.batch-size', '8', '--train.warmup-steps', '2', '--train.eval-every', '10', '--train.lr', '1e-2',
        '--no-progress']


def sh(*args, timeout=300):
    return subprocess.run([*map(str, args)], capture_output=True, text=True, timeout=timeout, env=ENV, cwd=ROOT)


def ok(r):
    assert r.returncode == 0, f'exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}'
    return r


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    "A folder of the kind a user has: two .txt files and a JSONL file (documents of a tiny language)."
    d = tmp_path_factory.mktemp('corpus')
    animals, colours, things = ['cat', 'dog', 'bird', 'fox'], ['red', 'blue', 'green'], ['mat', 'log', 'hill', 'box', 'bed']
    lines = [f"the {colours[i % 3]} {animals[i % 4]} sat on the {things[i % 5]} {i % 10} times.\n" for i in range(6000)]
    (d/'a.txt').write_text(''.join(lines[:2500]))
    (d/'sub').mkdir(); (d/'sub'/'b.txt').write_text(''.join(lines[2500:5000]))
    (d/'c.jsonl').write_text(''.join(json.dumps({'text': l, 'id': i}) + '\n' for i, l in enumerate(lines[5000:])))
    return d


def metrics(out):
    return [json.loads(l) for l in (out/'metrics.jsonl').read_text().splitlines()]


def test_train_text_folder_then_load_and_generate(corpus, tmp_path):
    out = tmp_path/'run'
    r = ok(sh('mmdiff', 'train', '--text', corpus, '--out', out, '--train.max-steps', 20, *TINY))
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res['step'] == 20 and res['val_loss'] > 0 and res['tokens_val'] > 0
    m = metrics(out)
    assert len(m) == 20 and m[-1]['loss'] < m[0]['loss'], 'the run did not learn'
    assert {'loss', 'lr', 'tok_per_s', 'mask_frac'} <= set(m[0]) and 'val_loss' in m[9]
    assert (out/'samples'/'step-0000020.txt').read_text().count('--- sample') == 2
    assert list((out/'logs').rglob('events.out.tfevents*')), 'no TensorBoard log'
    meta = json.loads((out/'data'/'meta.json').read_text())
    assert meta['n_docs'] == 2 + 1000 and meta['skipped'] == 0     # each .txt is one document, each JSONL line one
    pipe = MMDiff.from_pretrained(out, device='cpu')
    assert pipe.cfg.attention == 'full' and pipe.tokenizer is None
    assert isinstance(pipe.generate_text('the red', gen_length=8, seed=0), str)
    g = ok(sh('mmdiff', 'generate-text', '--checkpoint', out, 'the red cat', '--gen-length', 8, '--steps', 8, '--device', 'cpu'))
    assert g.stdout.startswith('the red cat')


@pytest.mark.parametrize('attention', ['block:8', 'causal'])
def test_train_block_and_causal_attention(corpus, tmp_path, attention):
    out = tmp_path/'run'
    ok(sh('mmdiff_train', '--text', corpus/'a.txt', '--out', out, '--attention', attention, '--train.max-steps', 12, *TINY))
    pipe = MMDiff.from_pretrained(out, device='cpu')
    assert pipe.cfg.attention == attention and type(pipe.model.attention).__name__ == ('BlockDiff' if attention != 'causal' else 'Causal')
    assert isinstance(pipe.generate_text('the', gen_length=16, seed=0), str)
    assert metrics(out)[-1]['loss'] > 0


def test_block_wise_image_run(image_folder, tmp_path):
    "mmdiff train --images --attention block:4: one row of the 4x4 code grid a block; every task sampled with the exact cache."
    out = tmp_path/'run'
    ok(sh('mmdiff', 'train', '--images', image_folder, '--out', out, '--attention', 'block:4', '--train.max-steps', 12, *IMG_TINY))
    pipe = MMDiff.from_pretrained(out, device='cpu')
    assert pipe.cfg.attention == 'block:4' and pipe.cfg.seq_len % 4 == 0 and pipe.cfg.cond_drop == 0.1
    m = metrics(out)
    assert all('loss_t2i' in r or 'loss_mmu' in r for r in m if 'loss' in r) and any('val_loss' in r for r in m)
    imgs = pipe.generate_image(['a 3', 'a 5'], steps=8, seed=0)
    assert imgs.shape == (2, 16, 16) and (imgs == pipe.generate_image(['a 3', 'a 5'], steps=8, seed=0, use_cache=False)).all()
    caps = pipe.caption(imgs)
    assert caps == pipe.caption(imgs, use_cache=False) and all(isinstance(c, str) for c in caps)
    assert (out/'samples'/'step-0000012.png').exists() and 'held-out loss' in (out/'samples'/'step-0000012.txt').read_text()


def test_resume_equals_an_uninterrupted_run(corpus, tmp_path):
    "The run is cut after step 10 (its later checkpoint removed, as a crash would leave it); the same command resumes."
    one, cut = tmp_path/'one', tmp_path/'cut'
    args = ['--text', corpus/'a.txt', '--train.max-steps', 20, '--train.save-every', 10, *TINY]
    ok(sh('mmdiff', 'train', '--out', one, *args))
    ok(sh('mmdiff', 'train', '--out', cut, *args))
    shutil.rmtree(cut/'checkpoint-0000020'); (cut/'latest').write_text('checkpoint-0000010')
    r = ok(sh('mmdiff', 'train', '--out', cut, *args))
    assert 'resuming from' in r.stderr + r.stdout
    a, b = load_file(one/'model.safetensors'), load_file(cut/'model.safetensors')
    for k in a: assert torch.equal(a[k], b[k]), k
    assert [x['loss'] for x in metrics(one)][10:] == [x['loss'] for x in metrics(cut)][20:]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


@pytest.mark.skipif(shutil.which('accelerate') is None, reason='accelerate launcher not on PATH')
def test_two_processes_equal_one_at_the_same_global_batch(corpus, tmp_path):
    one, two = tmp_path/'one', tmp_path/'two'
    args = ['--text', corpus/'a.txt', '--train.max-steps', 6, '--train.eval-every', 0, *[a for a in TINY if a != '8']]
    args[args.index('--train.batch-size') + 1:args.index('--train.batch-size') + 1] = ['4']
    ok(sh('mmdiff', 'train', '--out', one, '--train.grad-accum', 2, *args))
    ok(sh('accelerate', 'launch', '--multi_gpu', '--num_processes', 2, '--num_machines', 1, '--mixed_precision', 'no',
          '--dynamo_backend', 'no', '--main_process_port', free_port(), '-m', 'mmdiff.train', '--out', two, *args))
    assert json.loads((two/'latest').parent.joinpath((two/'latest').read_text(), 'state.json').read_text())['num_processes'] == 2
    l1, l2 = [x['loss'] for x in metrics(one)], [x['loss'] for x in metrics(two)]
    assert len(l1) == len(l2) == 6
    for a, b in zip(l1, l2): assert abs(a - b) <= 1e-5 * abs(a), (l1, l2)
    w1, w2 = load_file(one/'model.safetensors'), load_file(two/'model.safetensors')
    for k in w1: assert torch.allclose(w1[k], w2[k], rtol=1e-5, atol=1e-6), k


def test_bad_records_stop_the_run_with_their_list(tmp_path):
    d = tmp_path/'data'; d.mkdir()
    (d/'good.txt').write_text('fine text\n' * 3000)
    (d/'bad.txt').write_bytes(b'ok\n\xff\xfe broken\n')
    (d/'notes.jsonl').write_text('{"text": "fine"}\n{"body": "no text field"}\nnot json\n')
    out = tmp_path/'run'
    r = sh('mmdiff', 'train', '--text', d, '--out', out, *TINY)
    assert r.returncode == 2
    for s in ('3 bad record(s)', 'bad.txt:2: not UTF-8', "notes.jsonl:2: no 'text' field", 'notes.jsonl:3: not valid JSON', '--skip-bad'):
        assert s in r.stderr, (s, r.stderr)
    assert not (out/'checkpoint-0000001').exists() and not (out/'data'/'train.bin').exists()
    ok(sh('mmdiff', 'train', '--text', d, '--out', out, '--skip-bad', '--train.max-steps', 2, '--data.val-every', 0, *TINY))
    assert len((out/'skipped.txt').read_text().splitlines()) == 3


@pytest.mark.parametrize('args, message', [
    (['--text', 'MISSING.txt'], 'MISSING.txt: no such file or folder'),
    (['--attention', 'block:5'], 'attention block:5 needs data.seq_len to be a multiple of 5'),
    (['--train.lr-max', '1'], 'unrecognized arguments: --train.lr-max'),
    (['--model.max-len', '64'], 'unrecognized arguments: --model.max-len'),
    (['--model.d-model', '33'], 'd_model=33 is not divisible by n_head=2'),
    (['--data.seq-len', '2'], 'data.seq_len must be >= 4'),
    (['--attention', 'sparse'], "attention must be 'full', 'causal' or 'block:N'"),
    (['--schedule', 'square'], "argument --schedule: invalid choice: 'square'"),
    (['--schedule', 'cosine', '--attention', 'causal'], 'an autoregressive model has no masking schedule'),
    (['--data.sft-weight', '1.5'], 'data.sft_weight must be in [0, 1]'),
])
def test_bad_options_are_refused_before_training(corpus, tmp_path, args, message):
    base = ['--text', corpus/'a.txt', '--out', tmp_path/'run', *TINY]
    if args[0] == '--text': base = base[2:]
    r = sh('mmdiff', 'train', *base, *args)
    assert r.returncode == 2 and message in r.stderr, r.stderr[-2000:]
    assert not (tmp_path/'run'/'model.safetensors').exists()


def test_empty_corpus_and_config_file_errors(tmp_path):
    (tmp_path/'blank.txt').write_text('\n  \n')
    r = sh('mmdiff', 'train', '--text', tmp_path/'blank.txt', '--out', tmp_path/'run', *TINY)
    assert r.returncode == 2 and 'the corpus is empty' in r.stderr
    (tmp_path/'cfg.toml').write_text('[train]\nlr_max = 1\n')
    r = sh('mmdiff', 'train', '--config', tmp_path/'cfg.toml', '--text', tmp_path/'blank.txt', '--out', tmp_path/'run')
    assert r.returncode == 2 and "[train] TrainConfig: unknown field(s) ['lr_max']" in r.stderr
    r = sh('mmdiff', 'train', '--text', tmp_path/'blank.txt')
    assert r.returncode == 2 and 'no run folder: give --out DIR' in r.stderr


def test_help_documents_every_option():
    r = ok(sh('mmdiff', 'train', '--help'))
    from mmdiff.run import SECTIONS, DERIVED
    import dataclasses
    for name, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            if f.name not in DERIVED.get(name, {}): assert f"--{name}.{f.name.replace('_', '-')}" in r.stdout, f.name
    for flag in ('--text', '--sft', '--schedule', '--out', '--preset', '--attention', '--minutes', '--config', '--no-resume', '--skip-bad'):
        assert flag in r.stdout


def reversal_pairs(path, n_letters=3):
    "Every string of `n_letters` over 'abcd' reversed, as prompt/response JSONL (the kind of file a user fine-tunes on)."
    import itertools
    words = [' '.join(w) for w in itertools.product('abcd', repeat=n_letters)]
    path.write_text(''.join(json.dumps({'prompt': f'reverse {w} =', 'response': ' ' + w[::-1]}) + '\n' for w in words * 3))
    return path


def test_train_sft_pairs_block_attention_then_load_and_answer(tmp_path):
    pairs = reversal_pairs(tmp_path/'pairs.jsonl')
    out = tmp_path/'run'
    r = ok(sh('mmdiff', 'train', '--sft', pairs, '--out', out, '--attention', 'block:8', '--train.max-steps', 20, *TINY))
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res['pairs_train'] + res['pairs_val'] == 192 and res['pairs_val'] == 192 // 20 and 'tokens_train' not in res
    assert metrics(out)[-1]['loss'] < metrics(out)[0]['loss'], 'the run did not learn'
    assert (out/'samples'/'step-0000020.txt').read_text().count('--- held-out prompt') == 2
    pipe = MMDiff.from_pretrained(out, device='cpu')
    assert pipe.cfg.attention == 'block:8' and isinstance(pipe.generate_text('reverse a b c =', seed=0), str)


def test_bad_pairs_stop_the_run_with_their_list(tmp_path):
    (tmp_path/'p.jsonl').write_text('{"prompt": "a", "response": "b"}\n{"prompt": "a"}\n{"prompt": "a", "response": 7}\n'
                                    '{"prompt": "' + 'word ' * 40 + '", "response": "x"}\n')
    r = sh('mmdiff', 'train', '--sft', tmp_path/'p.jsonl', '--out', tmp_path/'run', *TINY)
    assert r.returncode == 2 and "2 bad record(s) in the prompt/response pairs" in r.stderr, r.stderr[-2000:]
    assert "p.jsonl:2: no 'response' field" in r.stderr and "p.jsonl:3: 'response' is int, not a string" in r.stderr
    r = sh('mmdiff', 'train', '--sft', tmp_path/'p.jsonl', '--out', tmp_path/'run', '--skip-bad', *TINY)
    assert r.returncode == 2 and 'p.jsonl:4: prompt' in r.stderr and '> seq_len 32' in r.stderr, r.stderr[-2000:]
    assert not (tmp_path/'run'/'data'/'sft'/'pairs.json').exists()


# ----------------------------------------------------------------------------------------------- image-caption folders
@pytest.fixture(scope='module')
def image_folder(tmp_path_factory):
    "An imagefolder as users have them: mixed sizes, modes and formats, in a sub-folder too, with metadata.jsonl."
    import numpy as np
    from PIL import Image
    from mmdiff.data import digits, digit_caption
    d = tmp_path_factory.mktemp('images')
    (d/'more').mkdir()
    imgs, labels = digits('train')
    lines = []
    for i in range(120):
        a = np.kron(imgs[i].numpy(), np.ones((3, 3), np.uint8))                        # 24 x 24 gray
        name = [f'{i}.png', f'more/{i}.jpg', f'{i}.bmp'][i % 3]
        im = Image.fromarray(a) if i % 3 != 1 else Image.fromarray(np.stack([a, a, a // 2], -1)).resize((30, 24))  # RGB, not square
        im.save(d/name)
        lines.append(json.dumps({'file_name': name, 'text': digit_caption(int(labels[i]))}) + '\n')
    (d/'metadata.jsonl').write_text(''.join(lines))
    return d


IMG_TINY = ['--image-size', '16', '--image.tok-steps', '20', '--image.n-samples', '4', '--image.sample-steps', '4', '--model.d-model', '32',
            '--model.n-layer', '2', '--model.n-head', '2', '--train.batch-size', '8', '--train.warmup-steps', '2', '--train.eval-every', '6',
            '--no-progress']


def test_train_image_folder_then_load_generate_and_caption(image_folder, tmp_path):
    out = tmp_path/'run'
    r = ok(sh('mmdiff', 'train', '--images', image_folder, '--out', out, '--train.max-steps', 6, *IMG_TINY))
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res['images_train'] == 114 and res['images_val'] == 6 and res['pixel_reader'] is True and res['tokenizer_psnr'] > 0
    assert (out/'samples'/'step-0000006.png').stat().st_size > 1000
    assert len((out/'samples'/'step-0000006.txt').read_text().splitlines()) == 1 + 1 + 4   # header, grid row, 4 captions
    assert set(json.loads((out/'imagetok.json').read_text())) >= {'psnr', 'usage'}
    pipe = MMDiff.from_pretrained(out, device='cpu')
    assert pipe.cfg.image_size == 16 and pipe.cfg.channels == 1
    assert pipe.generate_image(['a handwritten digit 3', 'a 5'], steps=4, seed=0).shape == (2, 16, 16)
    import numpy as np
    assert len(pipe.caption(np.zeros((3, 40, 40), np.uint8), steps=4)) == 3
    r = ok(sh('mmdiff', 'train', '--images', image_folder, '--out', out, '--train.max-steps', 8, *IMG_TINY))   # resumes
    assert 'resuming from' in r.stderr + r.stdout and [m['step'] for m in metrics(out)][-2:] == [7, 8]


@pytest.mark.skipif(shutil.which('accelerate') is None, reason='accelerate launcher not on PATH')
def test_image_run_two_processes_equal_one_at_the_same_global_batch(image_folder, tmp_path):
    """An image run under `accelerate launch` with 2 processes, on the tokenizer of a one-process run (copied in: the
    tokenizer trained by 2 processes differs in the last bits), equals that run: the first process encodes the codes
    into data/codes.npy while the other waits, then both read the memory-mapped codes and pixels."""
    one, two = tmp_path/'one', tmp_path/'two'
    args = ['--images', image_folder, '--train.max-steps', 6, '--train.eval-every', 0, *[a for a in IMG_TINY if a != '8']]
    args[args.index('--train.batch-size') + 1:args.index('--train.batch-size') + 1] = ['4']
    ok(sh('mmdiff', 'train', '--out', one, '--train.grad-accum', 2, *args))
    (two/'data').mkdir(parents=True)
    for f in ('images.u8', 'images.json', 'imagetok_key.json'): shutil.copy(one/'data'/f, two/'data'/f)
    shutil.copytree(one/'imagetok', two/'imagetok')
    shutil.copy(one/'imagetok.json', two/'imagetok.json')
    ok(sh('accelerate', 'launch', '--multi_gpu', '--num_processes', 2, '--num_machines', 1, '--mixed_precision', 'no',
          '--dynamo_backend', 'no', '--main_process_port', free_port(), '-m', 'mmdiff.train', '--out', two, *args))
    assert json.loads((two/'latest').parent.joinpath((two/'latest').read_text(), 'state.json').read_text())['num_processes'] == 2
    assert (two/'data'/'codes.npy').read_bytes() == (one/'data'/'codes.npy').read_bytes()     # encoded again, the same
    l1, l2 = [x['loss'] for x in metrics(one)], [x['loss'] for x in metrics(two)]
    assert len(l1) == len(l2) == 6
    for a, b in zip(l1, l2): assert abs(a - b) <= 1e-5 * abs(a), (l1, l2)
    w1, w2 = load_file(one/'model.safetensors'), load_file(two/'model.safetensors')
    for k in w1: assert torch.allclose(w1[k], w2[k], rtol=1e-5, atol=1e-6), k


def test_bad_image_folder_stops_the_run_with_its_list(image_folder, tmp_path):
    d = tmp_path/'imgs'
    shutil.copytree(image_folder, d)
    (d/'0.png').write_bytes(b'not an image')
    from PIL import Image
    Image.new('L', (10, 10)).save(d/'tiny.png')
    Image.new('L', (20, 20)).save(d/'stray.png')
    with open(d/'metadata.jsonl', 'a') as f:
        f.write('{"file_name": "tiny.png", "text": "small"}\n{"file_name": "gone.png", "text": "x"}\n{"file_name": "3.png"}\n')
    r = sh('mmdiff', 'train', '--images', d, '--out', tmp_path/'run', '--train.max-steps', 2, *IMG_TINY)
    assert r.returncode == 2, r.stderr
    for s in ('5 bad record(s)', "metadata.jsonl:1: '0.png' Pillow cannot read it", "'tiny.png' is 10x10, smaller than image_size 16",
              "'gone.png': no such file", "metadata.jsonl:123: needs a string 'file_name' and 'text' (a string or a non-empty list of strings)",
              'stray.png: no line of metadata.jsonl describes this image'):
        assert s in r.stderr, (s, r.stderr)
    assert not (tmp_path/'run'/'imagetok').exists()
    r = sh('mmdiff', 'train', '--images', image_folder, '--out', tmp_path/'run2', '--attention', 'block:5', *IMG_TINY)
    assert r.returncode == 2 and "block size 5 does not divide the image's 16 codes" in r.stderr, r.stderr
    r = sh('mmdiff', 'train', '--images', image_folder, '--out', tmp_path/'run2c', '--attention', 'causal', *IMG_TINY)
    assert r.returncode == 2 and "image runs train full attention or block:N" in r.stderr, r.stderr
    r = sh('mmdiff', 'train', '--images', image_folder, '--text', 'x.txt', '--out', tmp_path/'run3', *IMG_TINY)
    assert r.returncode == 2 and 'x.txt: no such file or folder' in r.stderr
    r = sh('mmdiff', 'train', '--images', tmp_path, '--out', tmp_path/'run4')
    assert r.returncode == 2 and 'metadata.jsonl does not exist' in r.stderr
