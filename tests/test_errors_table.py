"""Bad input across the public API, beyond tests/test_bad_input.py: each test here is a row of the table in
nbs/errors.ipynb (input -> error), and the last test checks that every row of that table names a test that exists."""
import ast, json, re
from pathlib import Path
import pytest
import torch
from accelerate import Accelerator

from mmdiff.vocab import train_vocab
from mmdiff.data import (Reversal, TaskDataset, shakespeare, digit_caption, draw_shape, MixedDataset, ImageFolder, text_files,
                         format_t2i, random_affine)
from mmdiff.schedule import sample_t
from mmdiff.model import Denoiser, ModelConfig, BlockDiff
from mmdiff.loss import MaskedDiffusion
from mmdiff.block import generate_block, BlockDiffusion
from mmdiff.multimodal import generate_image_codes, caption_codes, init_code_embeddings
from mmdiff import imagetok
from mmdiff.imagetok import VQConfig, VQVAE
from mmdiff.pipeline import MMDiff
from mmdiff.train import Trainer, TrainConfig, save_model, latest_checkpoint

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def vocab():
    return train_vocab(Reversal().examples(100), n_text=280, n_image_codes=4)

@pytest.fixture(scope='module')
def model(vocab):
    torch.manual_seed(0)
    return Denoiser(ModelConfig(vocab_size=vocab.vocab_size, max_len=24, d_model=16, n_layer=1, n_head=2)).eval()

@pytest.fixture(scope='module')
def vq():
    return VQVAE(VQConfig(image_size=8, channels=1, down=2)).eval()


# ----------------------------------------------------------------------------------------------- image tokenizer
def test_vqconfig_unknown_quantizer():
    with pytest.raises(ValueError, match=r"unknown quantizer 'kmeans'; known: \["):
        VQConfig(quantizer='kmeans')

def test_vqconfig_bad_down():
    with pytest.raises(ValueError, match=r'down must be a power of 2 dividing image_size=8, got 3'):
        VQConfig(image_size=8, down=3)

def test_vqvae_images_wrong_shape(vq):
    with pytest.raises(ValueError, match=r'images must have shape \(B,1,8,8\), got \(2, 1, 9, 9\)'):
        vq.encode(torch.zeros(2, 1, 9, 9))

def test_vqvae_images_out_of_range(vq):
    with pytest.raises(ValueError, match=r'float images must lie in \[0,1\], got range \[0, 255\]'):
        vq.encode(torch.full((1, 1, 8, 8), 255.0).index_fill_(2, torch.tensor([0]), 0.))

def test_vqvae_codes_out_of_range(vq):
    with pytest.raises(ValueError, match=rf'codes must lie in \[0, {vq.n_codes}\)'):
        vq.decode(torch.full((1, 4, 4), vq.n_codes))

def test_imagetok_load_missing_weights(vq, tmp_path):
    imagetok.save(vq, tmp_path); (tmp_path / imagetok.WEIGHTS_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=r'no weights file at .*model\.safetensors'):
        imagetok.load(tmp_path)


# ----------------------------------------------------------------------------------------------- data
def test_shakespeare_bad_split():
    with pytest.raises(ValueError, match=r"split must be 'train', 'val' or 'all', got 'test'"):
        shakespeare('test')

def test_digit_caption_bad_label():
    with pytest.raises(ValueError, match=r'digit label must be in 0..9, got 10'):
        digit_caption(10)

def test_draw_shape_bad_attribute():
    with pytest.raises(ValueError, match=r"attribute colour='pink' is not one of"):
        draw_shape(dict(colour='pink', shape='circle', size='small', position='left'))

def test_random_affine_needs_uint8():
    with pytest.raises(ValueError, match=r'images must be a uint8 tensor \(N, H, W\), got torch.float32 \(2, 8, 8\)'):
        random_affine(torch.zeros(2, 8, 8), 5)

def test_random_affine_negative_n():
    with pytest.raises(ValueError, match=r'n must be >= 0, got -1'):
        random_affine(torch.zeros(2, 8, 8, dtype=torch.uint8), -1)

def test_format_t2i_too_long(vocab):
    with pytest.raises(ValueError, match=r't2i caption of \d+ tokens \+ 16 image codes \+ 5 specials = \d+ .*exceeds'):
        format_t2i(vocab, 'a b c', torch.zeros(16, dtype=torch.long), seq_len=20)

def test_mixed_dataset_weights(vocab):
    ds = TaskDataset(vocab, Reversal(3, 4), seq_len=24, n=8)
    with pytest.raises(ValueError, match=r'need one weight per dataset, got 1 datasets and 2 weights'):
        MixedDataset([ds], [1., 1.], n=10)

def test_image_folder_without_captions(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'captions file .*captions\.jsonl not found'):
        ImageFolder(tmp_path)

def test_image_folder_bad_captions_line(tmp_path):
    (tmp_path / 'captions.jsonl').write_text('{"file": "a.png"\n')
    with pytest.raises(ValueError, match=r'captions\.jsonl line 1 is not valid JSON'):
        ImageFolder(tmp_path)

def test_text_files_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'text file .*nope\.txt not found'):
        text_files(tmp_path / 'nope.txt')


# ----------------------------------------------------------------------------------------------- block diffusion
def test_generate_block_needs_blockdiff_model(vocab, model):
    with pytest.raises(ValueError, match=r'a block-diffusion model needs BlockDiff attention'):
        generate_block(model, torch.tensor([[1, 2]]), gen_length=4, mask_id=vocab.mask_id)

def test_generate_block_prompt_with_mask(vocab):
    m = Denoiser(ModelConfig(vocab_size=vocab.vocab_size, max_len=24, d_model=16, n_layer=1, n_head=2), BlockDiff(4)).eval()
    with pytest.raises(ValueError, match=rf'the prompt contains mask_id={vocab.mask_id}'):
        generate_block(m, torch.tensor([[1, vocab.mask_id]]), gen_length=4, mask_id=vocab.mask_id)

def test_block_diffusion_block_size_does_not_divide(vocab):
    m = Denoiser(ModelConfig(vocab_size=vocab.vocab_size, max_len=24, d_model=16, n_layer=1, n_head=2), BlockDiff(5))
    batch = dict(ids=torch.zeros(2, 12, dtype=torch.long), prompt=torch.zeros(2, 12, dtype=torch.bool))
    with pytest.raises(ValueError, match=r'block_size=5 does not divide the sequence length n=12'):
        BlockDiffusion(vocab.mask_id, block_size=5)(m, batch)


# ----------------------------------------------------------------------------------------------- multimodal
def test_generate_image_codes_no_captions(vocab, model):
    with pytest.raises(ValueError, match=r'captions is empty: give at least one caption'):
        generate_image_codes(model, vocab, [], n_tokens=4, seq_len=16)

def test_generate_image_codes_negative_cfg(vocab, model):
    with pytest.raises(ValueError, match=r'cfg_scale must be >= 0 \(0 = no guidance\), got -1'):
        generate_image_codes(model, vocab, ['a'], n_tokens=4, seq_len=16, cfg_scale=-1)

def test_generate_image_codes_nan_cfg(vocab, model):
    with pytest.raises(ValueError, match=r'cfg_scale must be >= 0 \(0 = no guidance\), got nan'):
        generate_image_codes(model, vocab, ['a'], n_tokens=4, seq_len=16, cfg_scale=float('nan'))
    with pytest.raises(ValueError, match=r'temperature must be >= 0, got inf'):
        generate_image_codes(model, vocab, ['a'], n_tokens=4, seq_len=16, temperature=float('inf'))
    with pytest.raises(ValueError, match=r'cfg_scale must be >= 0'):
        generate_block(Denoiser(model.cfg, BlockDiff(4)).eval(), torch.zeros(1, 4, dtype=torch.long), 8,
                       mask_id=vocab.mask_id, cfg_scale=float('nan'))

def test_generate_image_codes_too_long(vocab, model):
    with pytest.raises(ValueError, match=r"seq_len=30 exceeds the model's max_len=24"):
        generate_image_codes(model, vocab, ['a'], n_tokens=4, seq_len=30)

def test_generate_image_codes_blocks_do_not_divide(vocab, model):
    with pytest.raises(ValueError, match=r'n_blocks=3 must be >= 1 and divide n_tokens=4'):
        generate_image_codes(model, vocab, ['a'], n_tokens=4, seq_len=16, steps=3, n_blocks=3)

def test_generate_image_codes_steps_not_multiple_of_blocks(vocab, model):
    with pytest.raises(ValueError, match=r'steps=3 must be a multiple of n_blocks=2'):
        generate_image_codes(model, vocab, ['a'], n_tokens=4, seq_len=16, steps=3, n_blocks=2)

@pytest.fixture(scope='module')
def block_model(vocab):
    torch.manual_seed(0)
    return Denoiser(ModelConfig(vocab_size=vocab.vocab_size, max_len=24, d_model=16, n_layer=1, n_head=2), BlockDiff(2)).eval()

def test_block_model_block_does_not_divide_codes(vocab):
    m3 = Denoiser(ModelConfig(vocab_size=vocab.vocab_size, max_len=24, d_model=16, n_layer=1, n_head=2), BlockDiff(3)).eval()
    with pytest.raises(ValueError, match=r"block size 3 does not divide the image's 4 codes"):
        generate_image_codes(m3, vocab, ['a'], n_tokens=4, seq_len=24, steps=4)

def test_block_model_steps_not_multiple_of_its_blocks(vocab, block_model):
    with pytest.raises(ValueError, match=r"steps=3 must be a multiple of the model's 2 blocks of 2 codes"):
        generate_image_codes(block_model, vocab, ['a'], n_tokens=4, seq_len=24, steps=3)

def test_block_model_caption_longer_than_context(vocab, block_model):
    with pytest.raises(ValueError, match=r'exceeds seq_len=12'):
        generate_image_codes(block_model, vocab, ['reverse: a b c d e f ='], n_tokens=4, seq_len=12, steps=4)

def test_cache_asked_of_full_attention(vocab, model):
    with pytest.raises(ValueError, match=r'use_cache=True needs a block-wise model \(BlockDiff attention: an exact KV cache\)'):
        generate_image_codes(model, vocab, ['a'], n_tokens=4, seq_len=16, steps=4, use_cache=True)
    with pytest.raises(ValueError, match=r'use_cache=True needs a block-wise model'):
        caption_codes(model, vocab, torch.tensor([[0, 1, 2, 3]]), seq_len=16, use_cache=True)

def test_guidance_of_a_model_trained_without_cond_drop(vocab, model):
    from mmdiff.pipeline import PipelineConfig
    tok = VQVAE(VQConfig(image_size=4, channels=1, down=2, n_codes=4)).eval()
    pipe = MMDiff(model, vocab, tok, PipelineConfig(seq_len=16, image_size=4, cond_drop=0.0, default_cfg=0.0))
    assert pipe.generate_image('a', steps=4, seed=0).shape == (1, 4, 4)
    with pytest.raises(ValueError, match=r'guidance \(cfg_scale=1.0\) needs a model trained with caption dropout'):
        pipe.generate_image('a', steps=4, cfg_scale=1.0)

def test_default_cfg_with_cond_drop_zero():
    from mmdiff.run import resolve
    with pytest.raises(ValueError, match=r'with image.cond_drop=0 set image.default_cfg=0'):
        resolve(dict(images='x', out='o', image=dict(cond_drop=0.0)))

def test_caption_codes_out_of_range(vocab, model):
    with pytest.raises(ValueError, match=r'image codes must lie in \[0, 4\), got range \[0, 9\]'):
        caption_codes(model, vocab, torch.tensor([[0, 9]]), seq_len=16)

def test_init_code_embeddings_tokenizer_mismatch(vocab, model, vq):
    with pytest.raises(ValueError, match=r'the vocabulary has 4 image codes but the tokenizer has 64'):
        init_code_embeddings(model, vocab, vq)

def test_pixels_without_reader(vocab, model):
    with pytest.raises(ValueError, match=r'this model has no pixel reader \(ModelConfig.reader_channels=0\): call it without pixels'):
        caption_codes(model, vocab, torch.zeros(1, 4, dtype=torch.long), 24, pixels=torch.zeros(1, 1, 4, 4, dtype=torch.uint8))

def test_pixel_slots_do_not_match_grid():
    m = Denoiser(ModelConfig(vocab_size=20, max_len=24, d_model=16, n_layer=1, n_head=2, reader_channels=1))
    slots = torch.zeros(1, 24, dtype=torch.bool); slots[0, 2:7] = True
    with pytest.raises(ValueError, match=r'each row of pixel_slots must mark 0 or exactly 16 positions'):
        m(torch.zeros(1, 24, dtype=torch.long), pixels=torch.zeros(1, 1, 8, 8, dtype=torch.uint8), pixel_slots=slots)

# ----------------------------------------------------------------------------------------------- pipeline
def test_pipeline_from_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'nope is not a folder'):
        MMDiff.from_pretrained(tmp_path / 'nope')

def test_pipeline_from_model_folder(model, tmp_path):
    save_model(model, tmp_path)
    with pytest.raises(FileNotFoundError, match=r'is not a saved MMDiff pipeline: .*pipeline\.json is missing'):
        MMDiff.from_pretrained(tmp_path)


# ----------------------------------------------------------------------------------------------- trainer
def test_trainer_accelerator_disagrees(vocab, model):
    ds = TaskDataset(vocab, Reversal(3, 4), seq_len=24, n=8)
    with pytest.raises(ValueError, match=r'the Accelerator given \(grad accumulation 1, .*disagrees with the TrainConfig \(2, '):
        Trainer(model, MaskedDiffusion(vocab.mask_id), ds, TrainConfig(grad_accum=2), accelerator=Accelerator(cpu=True))

def test_trainer_truncated_checkpoint(vocab, model, tmp_path):
    ds = TaskDataset(vocab, Reversal(3, 4), seq_len=24, n=8)
    tr = Trainer(model, MaskedDiffusion(vocab.mask_id), ds, TrainConfig(out_dir=str(tmp_path), batch_size=2, progress=False, cpu=True))
    d = tr.save_checkpoint(); f = d / 'trainer.pt'; f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(ValueError, match=r'checkpoint-0000000/trainer\.pt is truncated or corrupt'):
        tr.load_checkpoint(latest_checkpoint(tmp_path))

def test_trainer_newer_checkpoint_format(vocab, model, tmp_path):
    ds = TaskDataset(vocab, Reversal(3, 4), seq_len=24, n=8)
    tr = Trainer(model, MaskedDiffusion(vocab.mask_id), ds, TrainConfig(out_dir=str(tmp_path), batch_size=2, progress=False, cpu=True))
    d = tr.save_checkpoint(); st = json.loads((d / 'state.json').read_text())
    (d / 'state.json').write_text(json.dumps({**st, 'version': 7}))
    with pytest.raises(ValueError, match=r'checkpoint format version 7 is not supported'):
        tr.load_checkpoint(d)


# ----------------------------------------------------------------------------------------------- the table itself
def _tests_in(path: Path) -> set[str]:
    return {n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef) and n.name.startswith('test_')}

def test_every_table_row_names_an_existing_test():
    nb = json.loads((ROOT / 'nbs' / 'errors.ipynb').read_text())
    rows = [l for c in nb['cells'] if c['cell_type'] == 'markdown' for l in ''.join(c['source']).splitlines() if l.startswith('| `')]
    assert len(rows) >= 40, f'only {len(rows)} rows'
    known = {f.name: _tests_in(f) for f in (ROOT / 'tests').glob('test_*.py')}
    for row in rows:
        refs = re.findall(r'(test_\w+\.py)::(test_\w+)', row)
        assert refs, f'row without a test: {row}'
        for f, t in refs:
            assert f in ('test_bad_input.py', 'test_errors_table.py', 'test_hf.py', 'test_chat.py', 'test_train_cli.py'), row
            assert t in known[f], f'{f}::{t} does not exist (row: {row})'


# ----------------------------------------------------------------------------------------------- model options and caches
def test_model_config_kv_heads_not_dividing():
    with pytest.raises(ValueError, match=r'n_head=4 is not divisible by n_kv_head=3'):
        ModelConfig(n_head=4, n_kv_head=3)

def test_forward_span_before_refresh():
    from mmdiff.model import SpanCache
    m = Denoiser(ModelConfig(vocab_size=30, max_len=16, d_model=16, n_layer=2, n_head=2)).eval()
    with pytest.raises(ValueError, match=r'the SpanCache holds nothing \(batch, length\), not \(2, 12\): refresh it on this sequence first'):
        m.forward_span(torch.zeros(2, 12, dtype=torch.long), 4, 8, SpanCache(2))

def test_forward_span_on_exact_cache_model():
    from mmdiff.model import SpanCache
    m = Denoiser(ModelConfig(vocab_size=30, max_len=16, d_model=16, n_layer=2, n_head=2), BlockDiff(4)).eval()
    with pytest.raises(ValueError, match=r'BlockDiff\(block_size=4\) has an exact KV cache: use model\(ids, cache=model.new_cache\(\)\) instead of forward_span'):
        m.forward_span(torch.zeros(2, 12, dtype=torch.long), 4, 8, SpanCache(2))


def test_generate_unknown_cache(vocab, model):
    from mmdiff.model import SpanCache
    from mmdiff.sample import generate
    with pytest.raises(ValueError, match=r'unknown cache SpanCache\(.*\): use PrefixCache\(\), DualCache\(\) or None'):
        generate(model, torch.tensor([[vocab.bos_id]]), steps=2, gen_length=2, block_length=2, mask_id=vocab.mask_id,
                 cache=SpanCache(1))

def test_generate_approximate_cache_on_block_model(vocab):
    from mmdiff.sample import generate, DualCache
    bm = Denoiser(ModelConfig(vocab_size=vocab.vocab_size, max_len=24, d_model=16, n_layer=1, n_head=2), BlockDiff(2)).eval()
    with pytest.raises(ValueError, match=r'has an exact KV cache: decode it with mmdiff.block.generate_block'):
        generate(bm, torch.tensor([[vocab.bos_id]]), steps=2, gen_length=2, block_length=2, mask_id=vocab.mask_id,
                 cache=DualCache())

def test_generate_approximate_cache_with_model_kwargs(vocab, model):
    from mmdiff.sample import generate, PrefixCache
    with pytest.raises(ValueError, match=r"the only model kwarg passed on is modality .* got \['positions'\]: use cache=None"):
        generate(model, torch.tensor([[vocab.bos_id]]), steps=2, gen_length=2, block_length=2, mask_id=vocab.mask_id,
                 cache=PrefixCache(), positions=torch.arange(3))


# ----------------------------------------------------------------------------------------------- budgets and recipes
def test_train_config_negative_budget():
    from mmdiff.train import TrainConfig
    with pytest.raises(ValueError, match=r'budget_s must be >= 0 \(0 = keep max_steps\), got -1'):
        TrainConfig(budget_s=-1)

def test_steps_for_budget_no_time(vocab, model):
    from mmdiff.train import steps_for_budget
    with pytest.raises(ValueError, match=r'seconds must be > 0, got 0'):
        steps_for_budget(model, MaskedDiffusion(vocab.mask_id), [], 8, seconds=0)

def test_recipe_folder_that_is_not_the_recipes(tmp_path):
    from mmdiff.recipes import write_digits_folder, write_text_demo_folder
    (tmp_path/'digits').mkdir(); (tmp_path/'text').mkdir()
    with pytest.raises(FileExistsError, match=r"digits exists but has no metadata.jsonl: not a digits folder; remove it or choose another"):
        write_digits_folder(tmp_path/'digits')
    with pytest.raises(FileExistsError, match=r"text exists but is not a text demo folder"):
        write_text_demo_folder(tmp_path/'text')


def test_train_digits_without_steps_or_budget(tmp_path):
    from mmdiff.recipes import train_digits, DigitsRecipe
    with pytest.raises(ValueError, match=r"DigitsRecipe.steps=0 means 'fit the time budget': give budget_s > 0 or set steps"):
        train_digits(tmp_path, DigitsRecipe(steps=0))


# ----------------------------------------------------------------------------------------------- video (mmdiff.video)
@pytest.fixture(scope='module')
def video_pipe():
    from mmdiff.pipeline import PipelineConfig
    from mmdiff.video import VideoLayout
    v = train_vocab(['a 3 moving up', 'a 7 moving left'] * 5, n_text=300, n_image_codes=64, min_frequency=1, video=True)
    L = VideoLayout(4, 16).seq_len(v, 8, 3 * 16)
    m = Denoiser(ModelConfig(vocab_size=v.vocab_size, max_len=L, d_model=16, n_layer=1, n_head=2), BlockDiff(4))
    tok = VQVAE(VQConfig(image_size=8, channels=1, down=2)).eval()
    return MMDiff(m, v, tok, PipelineConfig(seq_len=L, attention='block:4', cond_drop=0.1, n_frames=3))

def test_clips_of_unequal_length(video_pipe):
    import numpy as np
    with pytest.raises(ValueError, match=r"clips of unequal length in one batch \(\[2, 3\] frames\): cut or pad them"):
        video_pipe.caption_video([np.zeros((3, 8, 8), np.uint8), np.zeros((2, 8, 8), np.uint8)])

def test_clip_frame_size_not_the_tokenizers(video_pipe):
    import numpy as np
    with pytest.raises(ValueError, match=r"frames must be 8 x 8 with 1 channel\(s\), the size this pipeline's tokenizer"):
        video_pipe.caption_video(np.zeros((1, 3, 16, 16), np.uint8))

def test_more_frames_than_the_context(video_pipe):
    with pytest.raises(ValueError, match=r"n_frames=5 is more than the 3 frames this model's context holds .* "
                                         r"pass window=True"):
        video_pipe.generate_video('a 3 moving up', n_frames=5, steps_per_frame=4)

def test_video_block_not_dividing_a_frame():
    from mmdiff.video import VideoLayout
    with pytest.raises(ValueError, match=r"block size 5 does not divide a frame's 16 codes: a block must not mix two frames"):
        VideoLayout(5, 16)

def test_video_steps_not_a_multiple_of_blocks_per_frame(video_pipe):
    with pytest.raises(ValueError, match=r"steps_per_frame=2 must be a positive multiple of the 4 blocks a frame holds"):
        video_pipe.generate_video('a 3 moving up', steps_per_frame=2)

def test_video_of_a_pipeline_without_clips(video_pipe):
    from mmdiff.pipeline import PipelineConfig
    p = MMDiff(video_pipe.model, video_pipe.vocab, video_pipe.tokenizer, video_pipe.cfg.replace(n_frames=0))
    with pytest.raises(ValueError, match=r"this pipeline was not trained on clips \(its config has n_frames=0\)"):
        p.generate_video('a 3')

def test_t2v_item_without_a_video_vocabulary(vocab):
    from mmdiff.video import VideoLayout
    with pytest.raises(ValueError, match=r"the vocabulary has no <\|t2v\|> token: build it with video=True"):
        VideoLayout(4, 4).t2v(vocab, 'a 3', torch.zeros(2, 4, dtype=torch.long), 24)
