"Invariants of the image side of mmdiff.data: t2i/mmu sequence formats, digits and shapes data, the pixel checker, datasets, user folders."
import json, random
import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from mmdiff.vocab import train_vocab, TEXT, IMAGE, SPECIAL
from mmdiff.data import (TASK_TEXT, TASK_T2I, TASK_MMU, format_t2i, format_mmu, format_sft, format_lm, image_seq_len,
                         digits, digit_caption, digit_label_from_text, DIGIT_TEMPLATES, DIGITS_TEST_START,
                         shapes, shape_attributes, shape_caption, draw_shape, COLOURS, SHAPES, SIZES, POSITIONS,
                         T2IDataset, MMUDataset, MixedDataset, TaskDataset, Reversal, ImageFolder, text_files,
                         as_chw, as_hwc, encode_images)

K, N = 16, 9      # image codes in the vocabulary, codes per image (3x3)
KEYS = {'ids', 'prompt', 'modality', 'attention_mask', 'task'}


@pytest.fixture(scope='module')
def vocab():
    caps = [digit_caption(d, random.Random(s)) for d in range(10) for s in range(30)] + shapes(200, seed=9)[2]
    return train_vocab(caps + Reversal().examples(100), n_text=320, n_image_codes=K)

@pytest.fixture(scope='module')
def codes():
    return torch.randint(0, K, (40, N), generator=torch.Generator().manual_seed(0))


# ---------------------------------------------------------------- formats
@pytest.mark.parametrize('caption', ['a 7', 'the number 7', 'there is a small red circle in the top left', ''])
def test_t2i_format_exact(vocab, codes, caption):
    L = 40
    it = format_t2i(vocab, caption, codes[0], L)
    assert set(it) == KEYS and all(it[k].shape == (L,) for k in KEYS - {'task'}) and it['task'].shape == ()
    cap = vocab.encode(caption); k = L - len(cap) - N - 5
    img = (codes[0] + vocab.image_offset).tolist()
    assert it['ids'].tolist() == [vocab.pad_id] * k + [vocab.t2i_id, vocab.bos_id] + cap + [vocab.eos_id, vocab.soi_id] + img + [vocab.eoi_id]
    # image slot at the end whatever the caption length
    assert it['ids'][-1] == vocab.eoi_id and it['ids'][-N - 2] == vocab.soi_id and it['ids'][-N - 3] == vocab.eos_id
    assert (~it['prompt']).nonzero().flatten().tolist() == list(range(L - N - 1, L - 1))      # targets: exactly the codes
    assert it['modality'].tolist() == [SPECIAL] * (k + 1) + [TEXT] * (len(cap) + 2) + [IMAGE] * (N + 2)
    assert it['attention_mask'].tolist() == [False] * k + [True] * (L - k)
    assert (it['attention_mask'] == (it['ids'] != vocab.pad_id)).all()
    assert it['task'].item() == TASK_T2I and it['ids'].dtype == torch.long and it['prompt'].dtype == torch.bool


def test_t2i_accepts_ids_and_grid_codes(vocab, codes):
    a = format_t2i(vocab, 'a 7', codes[1].view(3, 3), 30)
    b = format_t2i(vocab, vocab.encode('a 7'), codes[1], 30)
    assert torch.equal(a['ids'], b['ids'])


def test_t2i_too_long_caption_names_numbers(vocab, codes):
    cap = 'the number 7 ' * 6; n = len(vocab.encode(cap))
    with pytest.raises(ValueError, match=rf'{n} tokens.*exceeds seq_len=20'):
        format_t2i(vocab, cap, codes[0], 20)
    L = image_seq_len(vocab, n, N)
    assert format_t2i(vocab, cap, codes[0], L)['attention_mask'].all()                         # exact fit: no pad
    with pytest.raises(ValueError, match=r'\[0, 16\)'):
        format_t2i(vocab, 'a', torch.tensor([0, 16]), 20)
    with pytest.raises(ValueError, match='integer tensor'):
        format_t2i(vocab, 'a', torch.zeros(4), 20)


@pytest.mark.parametrize('question', ['', 'what digit is this?'])
def test_mmu_format_exact(vocab, codes, question):
    L, ans = 40, 'a handwritten digit 4'
    it = format_mmu(vocab, codes[2], ans, L, question=question)
    assert set(it) == KEYS
    q, a = vocab.encode(question), vocab.encode(ans)
    img = (codes[2] + vocab.image_offset).tolist()
    head = [vocab.mmu_id, vocab.soi_id] + img + [vocab.eoi_id, vocab.bos_id] + q
    assert it['ids'].tolist() == head + a + [vocab.eos_id] * (L - len(head) - len(a))           # right-padded with EOS
    assert it['prompt'].tolist() == [True] * len(head) + [False] * (L - len(head))             # answer + EOS padding = targets
    assert it['modality'].tolist() == [SPECIAL] + [IMAGE] * (N + 2) + [TEXT] * (L - N - 3)
    assert it['attention_mask'].all() and it['task'].item() == TASK_MMU
    with pytest.raises(ValueError, match='exceeds seq_len=15'):
        format_mmu(vocab, codes[2], ans, 15)


def test_text_formats_collate_with_image_items(vocab, codes):
    s = format_sft(vocab, 'reverse: a b =', ' b a', 30)
    l = format_lm(vocab, vocab.encode('the number 3 and a 4 ' * 10)[:29])
    for it in (s, l):
        assert set(it) == KEYS and it['attention_mask'].all() and it['task'].item() == TASK_TEXT
        assert (it['modality'] == TEXT).all()
    assert s['prompt'].sum() == 1 + len(vocab.encode('reverse: a b =')) and l['prompt'].tolist() == [True] + [False] * 29
    b = default_collate([s, l, format_t2i(vocab, 'a 3', codes[0], 30), format_mmu(vocab, codes[0], 'a 3', 30)])
    assert b['ids'].shape == (4, 30) and b['task'].tolist() == [TASK_TEXT, TASK_TEXT, TASK_T2I, TASK_MMU]


# ---------------------------------------------------------------- digits
def test_digits_split():
    (xtr, ytr), (xte, yte), (xa, ya) = digits('train'), digits('test'), digits('all')
    assert xa.shape == (1797, 8, 8) and xa.dtype == torch.uint8 and int(xa.min()) == 0 and int(xa.max()) == 255
    assert len(xtr) == DIGITS_TEST_START == 1500 and len(xte) == 297
    assert torch.equal(xtr, xa[:1500]) and torch.equal(xte, xa[1500:]) and torch.equal(torch.cat([ytr, yte]), ya)
    from sklearn.datasets import load_digits
    d = load_digits()
    assert np.array_equal(xte.numpy(), np.round(d.images[1500:] * 255 / 16).astype(np.uint8))    # test = indices >= 1500
    assert set(ytr.tolist()) == set(range(10))
    with pytest.raises(ValueError, match="'val'"): digits('val')


def test_digit_captions_contain_and_parse_the_numeral():
    rng = random.Random(1)
    seen = set()
    for lab in range(10):
        for _ in range(30):
            c = digit_caption(lab, rng); seen.add(c.replace(str(lab), '{d}'))
            assert str(lab) in c and digit_label_from_text(c) == lab
    assert seen == set(DIGIT_TEMPLATES) and len(DIGIT_TEMPLATES) >= 4
    for t in ('', 'a digit', 'a 3 and a 5', 'the number 10', '2.5'):
        assert digit_label_from_text(t) is None
    with pytest.raises(ValueError, match='0..9'): digit_caption(-1)


# ---------------------------------------------------------------- shapes
def test_shapes_seeded_and_captions_name_attributes():
    x, a, c = shapes(300, 16, seed=4)
    assert x.shape == (300, 16, 16, 3) and x.dtype == torch.uint8
    x2, a2, c2 = shapes(300, 16, seed=4)
    assert torch.equal(x, x2) and a == a2 and c == c2
    assert not torch.equal(x, shapes(300, 16, seed=5)[0])
    for k, vals in (('colour', COLOURS), ('shape', SHAPES), ('size', SIZES), ('position', POSITIONS)):
        assert {d[k] for d in a} == set(vals)                        # every value occurs
    for d, cap in zip(a, c):
        assert all(w in cap for w in (d['colour'], d['shape'], d['size'], d['position'].replace('-', ' ')))
    assert len({cap.replace(d['colour'], '').split()[0] for d, cap in zip(a, c)}) >= 3      # several templates
    # background black, shape in its quadrant, in its colour
    for img, d in zip(x[:50].numpy(), a[:50]):
        fg = img.max(-1) > 0
        ys, xs = np.nonzero(fg)
        assert (ys < 8).all() == d['position'].startswith('top') and (xs < 8).all() == d['position'].endswith('left')
        assert (img[fg] == COLOURS[d['colour']]).all()


@pytest.mark.parametrize('size,seed', [(16, 0), (16, 1), (16, 2), (24, 3), (32, 4)])
def test_shape_attributes_exact_on_generated(size, seed):
    x, a, _ = shapes(400, size, seed=seed)
    assert [shape_attributes(im) for im in x] == a
    assert [shape_attributes(im.float() / 255) for im in x[:50]] == a[:50]       # float images in [0,1] too


def test_shape_attributes_robust_to_noise():
    x, a, _ = shapes(600, 16, seed=7)
    rng = np.random.default_rng(0)
    def speckle(im, k):
        im = im.numpy().copy()
        for y, xx in rng.integers(0, im.shape[0], (k, 2)): im[y, xx] = rng.choice([0, 255], 3)
        return im
    one = np.mean([shape_attributes(speckle(im, 1)) == d for im, d in zip(x, a)])
    three = np.mean([shape_attributes(speckle(im, 3)) == d for im, d in zip(x, a)])
    assert one >= 0.995 and three >= 0.98, (one, three)
    gauss = [shape_attributes(np.clip(im.numpy() + rng.normal(0, 25, im.shape), 0, 255).astype(np.uint8)) for im in x[:200]]
    assert gauss == a[:200]
    dim = [shape_attributes((im.numpy() * 0.6).astype(np.uint8)) for im in x[:100]]     # dim colours keep their hue
    assert dim == a[:100]


def test_shape_attributes_bad_input_and_empty():
    assert shape_attributes(np.zeros((16, 16, 3), np.uint8)) == dict(colour=None, shape=None, size=None, position=None)
    with pytest.raises(ValueError, match=r'\(H,W,3\)'): shape_attributes(np.zeros((16, 16)))
    with pytest.raises(ValueError, match="shape='star'"):
        draw_shape(dict(colour='red', shape='star', size='small', position='top-left'))
    with pytest.raises(ValueError, match='size >= 16'): shapes(2, size=12)
    assert shape_caption(dict(colour='red', shape='circle', size='small', position='top-left')) == 'a small red circle at the top left'


# ---------------------------------------------------------------- datasets
def test_t2i_dataset(vocab, codes):
    labels = torch.arange(40) % 10
    cap = lambda j, rng: digit_caption(int(labels[j]), rng)
    L = image_seq_len(vocab, max(len(vocab.encode(t.format(d=d))) for t in DIGIT_TEMPLATES for d in range(10)), N)
    ds = T2IDataset(vocab, codes, cap, L, n=5000, cond_drop=0.1, seed=3)
    assert len(ds) == 5000 and torch.equal(ds[17]['ids'], T2IDataset(vocab, codes, cap, L, 5000, 0.1, seed=3)[17]['ids'])
    texts = [ds.text(i) for i in range(5000)]
    rate = np.mean([t == '' for t in texts])
    assert abs(rate - 0.1) < 4 * (0.1 * 0.9 / 5000) ** 0.5, rate
    for i in range(0, 5000, 97):
        it, j = ds[i], ds.image_index(i)
        assert j == i % 40 and torch.equal(it['ids'][-N - 1:-1], codes[j] + vocab.image_offset)
        assert (~it['prompt']).sum() == N and not it['prompt'][-N - 1:-1].any()
        if texts[i] == '':
            assert it['ids'][-N - 5:-N - 2].tolist() == [vocab.t2i_id, vocab.bos_id, vocab.eos_id]
        else:
            assert digit_label_from_text(texts[i]) == int(labels[j])
            assert vocab.decode(it['ids'], skip_special=True) == texts[i]
    assert T2IDataset(vocab, codes, cap, L, 100, cond_drop=0.0).text(5) != ''
    assert all(T2IDataset(vocab, codes, cap, L, 100, cond_drop=1.0).text(i) == '' for i in range(20))
    with pytest.raises(ValueError, match='cond_drop'): T2IDataset(vocab, codes, cap, L, 10, cond_drop=1.5)
    with pytest.raises(ValueError, match='2 captions for 40 images'): T2IDataset(vocab, codes, ['a', 'b'], L, 10)
    with pytest.raises(IndexError): ds[5000]


def test_mmu_dataset(vocab, codes):
    caps = [f'a handwritten digit {i % 10}' for i in range(40)]
    L = image_seq_len(vocab, 12, N, question_tokens=len(vocab.encode('which digit?')))
    ds = MMUDataset(vocab, codes, caps, L, n=100, seed=1, question='which digit?')
    for i in (0, 39, 40, 77):
        it, j = ds[i], i % 40
        ref = format_mmu(vocab, codes[j], caps[j], L, question='which digit?')
        assert all(torch.equal(it[k], ref[k]) for k in KEYS)


def test_mixed_dataset_proportions_and_purity(vocab, codes):
    L = 32
    parts = [TaskDataset(vocab, Reversal(2, 3), L, 50), T2IDataset(vocab, codes, [f'a {i % 10}' for i in range(40)], L, 50),
             MMUDataset(vocab, codes, [f'a {i % 10}' for i in range(40)], L, 50)]
    w = [1.0, 2.0, 1.0]
    mix = MixedDataset(parts, w, n=8000, seed=2)
    comp = [mix.component(i) for i in range(8000)]
    frac = np.bincount([k for k, _ in comp], minlength=3) / 8000
    assert np.allclose(frac, [0.25, 0.5, 0.25], atol=4 * (0.25 / 8000) ** 0.5), frac
    assert len({j for k, j in comp if k == 1}) == 50                                 # indices cover each component
    tasks = default_collate([mix[i] for i in range(64)])['task'].tolist()
    assert tasks == [(TASK_TEXT, TASK_T2I, TASK_MMU)[k] for k, _ in comp[:64]]
    assert torch.equal(mix[123]['ids'], MixedDataset(parts, w, 8000, seed=2)[123]['ids'])
    assert [c[0] for c in comp[:200]] != [MixedDataset(parts, w, 8000, seed=3).component(i)[0] for i in range(200)]
    assert all(MixedDataset(parts, [0, 1, 0], 100).component(i)[0] == 1 for i in range(100))
    with pytest.raises(ValueError, match='share seq_len'): MixedDataset([parts[0], TaskDataset(vocab, Reversal(2, 3), 33, 5)], [1, 1], 10)
    with pytest.raises(ValueError, match='positive sum'): MixedDataset(parts, [0, 0, 0], 10)


def test_image_layout_helpers_and_encode():
    x = torch.randint(0, 256, (5, 8, 8, 3), dtype=torch.uint8)
    assert as_chw(x).shape == (5, 3, 8, 8) and torch.equal(as_hwc(as_chw(x)), x)
    assert as_chw(x[..., 0]).shape == (5, 1, 8, 8) and torch.equal(as_hwc(as_chw(x[..., 0])), x[..., 0])
    assert torch.equal(as_hwc(as_chw(x).float() / 255), x)
    class Tok:   # stand-in tokenizer: code = mean of 4x4 patches // 16
        def encode(self, imgs): return (imgs.float().unfold(2, 4, 4).unfold(3, 4, 4).mean((1, 4, 5)) // 16).long()
    c = encode_images(Tok(), x, batch_size=2)
    assert c.shape == (5, 4) and torch.equal(c, Tok().encode(as_chw(x)).flatten(1))     # row-major flattening
    with pytest.raises(ValueError, match=r'\(N,H,W\)'): as_chw(torch.zeros(8, 8, dtype=torch.uint8))


# ---------------------------------------------------------------- user data
def _png(path, arr):
    from PIL import Image
    Image.fromarray(arr).save(path)

def test_image_folder(tmp_path):
    x, a, c = shapes(4, 32, seed=1)
    for i in range(4): _png(tmp_path / f'img{i}.png', x[i].numpy())
    (tmp_path / 'sub').mkdir(); _png(tmp_path / 'sub' / 'g.png', x[0].numpy())
    lines = [json.dumps({'file': f'img{i}.png', 'caption': c[i]}) for i in range(4)]
    (tmp_path / 'captions.jsonl').write_text('\n'.join(lines) + '\n')
    f = ImageFolder(tmp_path)
    assert f.images.shape == (4, 32, 32, 3) and f.images.dtype == torch.uint8 and torch.equal(f.images, x)
    assert f.captions == c and len(f) == 4 and f[2][1] == c[2]
    g = ImageFolder(tmp_path, size=16, mode='L')
    assert g.images.shape == (4, 16, 16)
    (tmp_path / 'nested.jsonl').write_text(json.dumps({'file': 'sub/g.png', 'caption': 'x'}) + '\n')
    assert ImageFolder(tmp_path, 'nested.jsonl').captions == ['x']


@pytest.mark.parametrize('content,match', [
    ('{"file": "img0.png", "caption": "ok"}\n{"file": "img0.png", "caption": }\n', 'line 2 is not valid JSON'),
    ('{"file": "missing.png", "caption": "x"}\n', 'missing.png'),
    ('{"file": "junk.png", "caption": "x"}\n', 'cannot read image .*junk.png'),
    ('{"caption": "x"}\n', "line 1 must be an object with string 'file'"),
    ('\n\n', 'lists no images'),
    ('{"file": "img0.png", "caption": "x"}\n{"file": "big.png", "caption": "y"}\n', 'big.png has shape'),
])
def test_image_folder_errors_name_the_file(tmp_path, content, match):
    _png(tmp_path / 'img0.png', np.zeros((8, 8, 3), np.uint8)); _png(tmp_path / 'big.png', np.zeros((9, 9, 3), np.uint8))
    (tmp_path / 'junk.png').write_bytes(b'\x89PNG but not really')
    (tmp_path / 'c.jsonl').write_text(content)
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        ImageFolder(tmp_path, 'c.jsonl')


def test_image_folder_missing_captions_and_mode(tmp_path):
    with pytest.raises(FileNotFoundError, match='captions.jsonl'): ImageFolder(tmp_path)
    with pytest.raises(ValueError, match="mode must be"): ImageFolder(tmp_path, mode='CMYK')


def test_text_files(tmp_path):
    (tmp_path / 'b.txt').write_text('second'); (tmp_path / 'a.txt').write_text('first\nline')
    (tmp_path / 'skip.md').write_text('no')
    assert text_files(tmp_path) == ['first\nline', 'second']
    assert text_files(str(tmp_path / 'b.txt')) == ['second']
    assert text_files([tmp_path / 'b.txt', tmp_path / 'a.txt']) == ['second', 'first\nline']
    with pytest.raises(FileNotFoundError, match='nope.txt'): text_files(tmp_path / 'nope.txt')
    (tmp_path / 'bin.txt').write_bytes(b'\xff\xfe\xfa')
    with pytest.raises(ValueError, match='bin.txt'): text_files([tmp_path / 'bin.txt'])
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='no text files'): text_files(tmp_path / 'empty')
