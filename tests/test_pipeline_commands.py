"""`MMDiff` on awkward input (lists of mixed-size images, empty batches, bad guidance scales) and the
`mmdiff generate-image` / `mmdiff caption` commands on a saved pipeline, run as the installed console script: exit
status 0 on success, 2 with an `mmdiff: error: ...` line on bad input. The pipelines are tiny and untrained: these tests
check files, shapes and errors, not image quality."""
import math, subprocess
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image
from mmdiff.data import image_seq_len
from mmdiff.imagetok import VQVAE, VQConfig
from mmdiff.model import Denoiser, ModelConfig
from mmdiff.pipeline import MMDiff, PipelineConfig, to_model_images
from mmdiff.vocab import train_vocab
from mmdiff import cli

MIXED = [np.full((8, 8), 10, np.uint8), np.full((5, 7, 1), 20, np.uint8), np.full((40, 30, 3), 30, np.uint8),
         np.full((64, 64, 4), 40, np.uint8)]                                   # (H,W), (H,W,1), (H,W,3), (H,W,4)


def tiny_pipeline(channels: int = 1) -> MMDiff:
    "An untrained image pipeline: VQ-VAE with 16 codes on 8x8 images, a 1-layer denoiser of width 16."
    torch.manual_seed(0)
    tok = VQVAE(VQConfig(channels=channels, hidden=8, n_codes=16, code_dim=4))
    corpus = ['a handwritten digit 3', 'the number 7'] * 5
    vocab = train_vocab(corpus, n_text=300, n_image_codes=tok.n_codes, min_frequency=1)
    L = image_seq_len(vocab, 8, tok.tokens_per_image)
    model = Denoiser(ModelConfig(vocab_size=vocab.vocab_size, max_len=L, d_model=16, n_layer=1, n_head=2))
    return MMDiff(model, vocab, tok, PipelineConfig(seq_len=L, channels=channels))


def text_only_pipeline() -> MMDiff:
    "An untrained text-only pipeline (no image tokenizer, image_size 0), as `mmdiff train` saves."
    vocab = train_vocab(['a handwritten digit 3'] * 5, n_text=300, min_frequency=1)
    model = Denoiser(ModelConfig(vocab_size=vocab.vocab_size, max_len=16, d_model=16, n_layer=1, n_head=2))
    return MMDiff(model, vocab, None, PipelineConfig(seq_len=16, image_size=0))


@pytest.fixture(scope='module')
def pipe():
    return tiny_pipeline()


@pytest.fixture(scope='module')
def saved(tmp_path_factory):
    "Folders of a saved image pipeline and a saved text-only pipeline."
    d = tmp_path_factory.mktemp('pipelines')
    tiny_pipeline().save_pretrained(d / 'image')
    text_only_pipeline().save_pretrained(d / 'text')
    return d


@pytest.fixture(scope='module')
def image_files(tmp_path_factory):
    "Image files of mixed sizes, modes and formats, written with Pillow."
    d = tmp_path_factory.mktemp('images')
    rng = np.random.default_rng(0)
    def pixels(shape, top=256, dtype=np.uint8):
        return rng.integers(0, top, shape, dtype=dtype)
    Image.fromarray(pixels((8, 8))).save(d / 'gray.png')                                 # L, 8x8
    Image.fromarray(pixels((30, 40, 3))).save(d / 'photo.jpg')                           # RGB JPEG 40x30
    Image.fromarray(pixels((64, 64, 4))).save(d / 'alpha.png')                           # RGBA 64x64
    Image.fromarray(pixels((20, 16, 3))).convert('P').save(d / 'pal.gif')                # palette GIF
    Image.fromarray(pixels((12, 12, 3))).save(d / 'bitmap.bmp')                          # BMP
    Image.fromarray(pixels((9, 11), 65536, np.uint16)).save(d / 'deep.png')              # I;16
    return [d / f for f in ('gray.png', 'photo.jpg', 'alpha.png', 'pal.gif', 'bitmap.bmp', 'deep.png')]


def mmdiff(*args):
    return subprocess.run(['mmdiff', *map(str, args)], capture_output=True, text=True, timeout=300)


# --- MMDiff on awkward input (in process) ---

def test_list_of_mixed_sizes_and_channels(pipe):
    x = to_model_images(MIXED, 8, 1)
    assert (x.dtype, tuple(x.shape)) == (torch.uint8, (4, 1, 8, 8))
    assert x.flatten(1).float().mean(1).tolist() == [10., 20., 30., 40.]       # each resized alone; alpha dropped
    assert len(pipe.caption(MIXED, steps=2)) == 4
    assert tuple(pipe.encode_images(tuple(MIXED)).shape) == (4, pipe.n_tokens)
    keep = np.ones((2, 8, 8), bool)
    keep[:, 4:] = False
    assert pipe.inpaint(MIXED[2:], keep, 'a 3', steps=2, seed=0).shape == (2, 8, 8)
    assert to_model_images(MIXED, 8, 3).shape == (4, 3, 8, 8)                 # to an RGB tokenizer too


def test_empty_batches_are_clear_errors(pipe):
    empty = np.zeros((0, 8, 8), np.uint8)
    for f in (lambda: pipe.caption([]), lambda: pipe.encode_images([]), lambda: pipe.caption(empty)):
        with pytest.raises(ValueError, match='no images given'): f()
    with pytest.raises(ValueError, match='no prompts given'): pipe.generate_image([])


@pytest.mark.parametrize('scale', [math.nan, math.inf, -math.inf, -0.5])
def test_guidance_scale_must_be_finite_and_non_negative(pipe, scale):
    with pytest.raises(ValueError, match=r'cfg_scale \(the guidance scale\) must be a finite number >= 0'):
        pipe.generate_image('a 3', steps=2, cfg_scale=scale)
    with pytest.raises(ValueError, match='cfg_scale'):
        pipe.inpaint(MIXED[:1], np.ones((8, 8), bool), 'a 3', steps=2, cfg_scale=scale)


def test_steps_and_float_images(pipe):
    for steps in (0, -1, 2.5):
        with pytest.raises(ValueError, match='steps must be an integer >= 1'): pipe.generate_image('a 3', steps=steps)
        with pytest.raises(ValueError, match='steps must be an integer >= 1'):
            pipe.inpaint(MIXED[:1], np.ones((8, 8), bool), 'a 3', steps=steps)
    with pytest.raises(ValueError, match=r'must be uint8 arrays \(0..255\), got dtype float32: scale floats in'):
        pipe.caption(np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match='image 1 of 2 must be uint8'):
        pipe.caption([MIXED[0], np.zeros((8, 8), np.float64)])
    assert pipe.generate_image(['a 3'], steps=2, cfg_scale=0.0, seed=0).shape == (1, 8, 8)


def test_text_only_pipeline_still_refuses_images():
    t = text_only_pipeline()
    for f in (lambda: t.generate_image('a 3'), lambda: t.caption(MIXED), lambda: t.encode_images(MIXED)):
        with pytest.raises(ValueError, match='needs an image model'): f()


def test_rgb_pngs_and_grid(tmp_path):
    "The PNG writer and the grid take what generate_image returns for an RGB pipeline, (N, H, W, 3) uint8."
    imgs = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    assert Image.open(cli.save_png(imgs[0], tmp_path / 'a.png')).mode == 'RGB'
    assert np.array_equal(np.asarray(Image.open(tmp_path / 'a.png')), imgs[0])
    cli.image_grid(imgs, ['red', 'a much longer prompt ' * 5], 2, tmp_path / 'grid.png')
    assert Image.open(tmp_path / 'grid.png').size[0] > 100


# --- the console script ---

def test_generate_image_writes_pngs_and_grid(saved, tmp_path):
    out = tmp_path / 'out'
    r = mmdiff('generate-image', '--pipeline', saved / 'image', 'a handwritten 3', 'the number 7!', '--out-dir', out,
               '--n', 2, '--steps', 2, '--seed', 0, '--device', 'cpu')
    assert r.returncode == 0, r.stderr
    names = ['a-handwritten-3-0.png', 'a-handwritten-3-1.png', 'the-number-7-0.png', 'the-number-7-1.png']
    assert r.stdout.splitlines() == [str(out / n) for n in names]
    for n in names:
        im = Image.open(out / n)
        assert (im.format, im.mode, im.size) == ('PNG', 'L', (8, 8))
    assert Image.open(out / 'grid.png').format == 'PNG'


def test_caption_reads_mixed_files(saved, image_files):
    r = mmdiff('caption', '--pipeline', saved / 'image', *image_files, '--steps', 2, '--device', 'cpu')
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [l.split('\t')[0] for l in lines] == [str(f) for f in image_files]  # one line per image, in order
    assert all(l.count('\t') == 1 for l in lines)


def test_caption_bad_files_all_named_in_one_error(saved, image_files, tmp_path):
    (tmp_path / 'notes.png').write_text('not an image')
    bad = [tmp_path / 'missing.png', tmp_path / 'notes.png']
    r = mmdiff('caption', '--pipeline', saved / 'image', image_files[0], *bad)
    assert r.returncode == 2 and r.stdout == ''                                 # nothing captioned
    assert 'mmdiff: error: cannot read 2 of 3 image file(s)' in r.stderr
    assert 'missing.png (no such file)' in r.stderr
    assert 'notes.png (not an image file Pillow can read)' in r.stderr


def test_caption_without_images_is_an_argparse_error(saved):
    r = mmdiff('caption', '--pipeline', saved / 'image')
    assert r.returncode == 2 and 'the following arguments are required: IMAGE' in r.stderr
    with pytest.raises(SystemExit) as e:                                        # and generate-image, in process
        cli.run(['generate-image', '--pipeline', str(saved / 'image'), '--out-dir', 'x'])
    assert e.value.code == 2


def test_generate_image_nan_cfg_scale(saved, tmp_path):
    r = mmdiff('generate-image', '--pipeline', saved / 'image', 'a 3', '--out-dir', tmp_path / 'o',
               '--cfg-scale', 'nan')
    assert r.returncode == 2
    assert 'mmdiff: error: cfg_scale (the guidance scale) must be a finite number >= 0' in r.stderr
    assert not (tmp_path / 'o').exists()
    assert cli.main(['generate-image', '--pipeline', str(saved / 'image'), 'a 3', '--out-dir', str(tmp_path / 'o'),
                     '--cfg-scale', '-1']) == 2


def test_generate_image_keeps_an_earlier_runs_files(saved, tmp_path):
    args = ('generate-image', '--pipeline', saved / 'image', 'a 3', '--out-dir', tmp_path, '--n', '1', '--steps', '2',
            '--device', 'cpu')
    assert mmdiff(*args).returncode == 0
    first = (tmp_path / 'a-3-0.png').read_bytes()
    r = mmdiff(*args, '--seed', '5')
    assert r.returncode == 2
    assert f'--out-dir {tmp_path} already holds a-3-0.png, grid.png (an earlier run?)' in r.stderr
    assert (tmp_path / 'a-3-0.png').read_bytes() == first
    assert mmdiff(*args, '--seed', '5', '--overwrite').returncode == 0


def test_text_only_pipeline_is_a_clear_error(saved, image_files, tmp_path, capsys):
    r = mmdiff('generate-image', '--pipeline', saved / 'text', 'a 3', '--out-dir', tmp_path / 'o', '--device', 'cpu')
    assert r.returncode == 2
    assert 'mmdiff: error: mmdiff generate-image needs an image model: this pipeline was trained on text' in r.stderr
    assert cli.main(['caption', '--pipeline', str(saved / 'text'), str(image_files[0]), '--device', 'cpu']) == 2
    assert 'mmdiff caption needs an image model' in capsys.readouterr().err


def test_not_a_saved_pipeline(image_files, tmp_path, capsys):
    "In process (the console script's path is the same `main`): a folder without pipeline.json, a missing folder."
    assert cli.main(['caption', '--pipeline', str(tmp_path), str(image_files[0])]) == 2
    assert 'is not a saved MMDiff pipeline' in capsys.readouterr().err
    missing = str(tmp_path / 'nope')
    assert cli.main(['generate-image', '--pipeline', missing, 'a 3', '--out-dir', str(tmp_path / 'o')]) == 2
    assert 'is not a folder' in capsys.readouterr().err
