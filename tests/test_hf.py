"""Released checkpoints (mmdiff.hf): parity with each architecture's own reference code on the tiny fixtures in
tests/fixtures/hf (logits and sampled tokens), the sharded path, and every bad checkpoint's error."""
import json, shutil
from pathlib import Path
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from mmdiff.hf import from_hf, checkpoint_files, read_config, LLaDA, MMaDA, Dream, SDAR
from mmdiff.model import BlockDiff, Full
from mmdiff.sample import generate
from mmdiff.block import generate_block

FIX = Path(__file__).resolve().parent / 'fixtures' / 'hf'
NAMES = ['llada', 'llada_tied', 'llada_sharded', 'mmada', 'dream', 'sdar']


def load(name):
    ref = load_file(str(FIX / name / 'reference.safetensors'))
    cfg = json.loads((FIX / name / 'config.json').read_text())
    return from_hf(FIX / name, device='cpu', dtype='float32'), ref, cfg


@pytest.mark.parametrize('name', NAMES)
def test_logits_match_the_reference_code(name):
    model, ref, cfg = load(name)
    out = model(ref['ids'])                                                  # (B, L, V)
    raw = ref['logits']                                                      # the reference model's own output
    assert raw.std() > 1                                                     # weights large enough that a wrong mapping shows
    if name == 'dream':                                                      # Dream's row i predicts token i+1: mmdiff shifts it
        assert torch.allclose(out[:, 1:], raw[:, :-1], atol=1e-4, rtol=0)
        assert torch.allclose(out[:, 0], raw[:, 0], atol=1e-4, rtol=0)
    else:
        assert torch.allclose(out, raw, atol=1e-4, rtol=0), (out - raw).abs().max()


@pytest.mark.parametrize('name', [n for n in NAMES if n != 'sdar'])
def test_generate_gives_the_reference_tokens(name):
    model, ref, cfg = load(name)
    x = generate(model, ref['prompt'], steps=8, gen_length=8, block_length=4, temperature=0., mask_id=cfg['mask_token_id'])
    assert torch.equal(x, ref['generated'])


@pytest.mark.parametrize('use_cache', [False, True])
def test_sdar_block_sampler_gives_the_reference_tokens(use_cache):
    model, ref, cfg = load('sdar')
    assert isinstance(model.attention, BlockDiff) and model.attention.block_size == cfg['block_size']
    x = generate_block(model, ref['prompt'], gen_length=8, steps_per_block=cfg['block_size'], temperature=0.,
                       mask_id=cfg['mask_token_id'], use_cache=use_cache)
    assert torch.equal(x, ref['generated'])


def test_families_and_options():
    kinds = {n: read_config(FIX / n)[1] for n in NAMES}
    assert [type(kinds[n]) for n in NAMES] == [LLaDA, LLaDA, LLaDA, MMaDA, Dream, SDAR]
    dream, sdar = load('dream')[0], load('sdar')[0]
    assert dream.cfg.kv_heads < dream.cfg.n_head and dream.cfg.qkv_bias and dream.cfg.shift_logits
    assert isinstance(dream.attention, Full)
    assert sdar.cfg.qk_norm and sdar.cfg.dh != sdar.cfg.d_model // sdar.cfg.n_head and sdar.cfg.kv_heads < sdar.cfg.n_head
    tied = load('llada_tied')[0]
    assert tied.head.weight is tied.tok_emb.weight


def test_sharded_checkpoint_reads_the_index():
    files = checkpoint_files(FIX / 'llada_sharded')
    index = json.loads((FIX / 'llada_sharded' / 'model.safetensors.index.json').read_text())
    assert [f.name for f in files] == sorted(set(index['weight_map'].values())) and len(files) == 3


def test_bf16_load_has_no_fp32_parameters():
    model = from_hf(FIX / 'llada_sharded', device='cpu', dtype=torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    ref = load_file(str(FIX / 'llada_sharded' / 'reference.safetensors'))
    out = model(ref['ids'])
    assert (out.argmax(-1) == ref['logits'].argmax(-1)).float().mean() > 0.8


# ----------------------------------------------------------------------------------------------- bad checkpoints
@pytest.fixture
def sharded(tmp_path):
    return Path(shutil.copytree(FIX / 'llada_sharded', tmp_path / 'ckpt'))

SHARD = 'model-00002-of-00003.safetensors'

def rewrite(folder, fn):
    "Apply fn to the tensors of every shard and rewrite the index to match."
    wm = {}
    for f in sorted(folder.glob('model-*.safetensors')):
        with safe_open(str(f), 'pt') as sf: sd = {k: sf.get_tensor(k) for k in sf.keys()}
        sd = fn(sd)
        save_file(sd, str(f)); wm.update({k: f.name for k in sd})
    (folder / 'model.safetensors.index.json').write_text(json.dumps({'metadata': {}, 'weight_map': wm}))


def test_hf_folder_without_config(tmp_path):
    with pytest.raises(FileNotFoundError, match='has no config.json: not a released checkpoint folder'):
        from_hf(tmp_path, device='cpu')

def test_hf_unknown_architecture(sharded):
    cfg = json.loads((sharded / 'config.json').read_text())
    (sharded / 'config.json').write_text(json.dumps({**cfg, 'model_type': 'gpt2', 'architectures': ['GPT2LMHeadModel']}))
    with pytest.raises(ValueError, match=r"model_type 'gpt2' .* is not an architecture this version of mmdiff reads"):
        from_hf(sharded, device='cpu')

def test_hf_unsupported_switch(sharded):
    cfg = json.loads((sharded / 'config.json').read_text())
    (sharded / 'config.json').write_text(json.dumps({**cfg, 'alibi': True}))
    with pytest.raises(ValueError, match=r"config.json: field 'alibi' = True is not supported"):
        from_hf(sharded, device='cpu')

def test_hf_missing_shard(sharded):
    (sharded / SHARD).unlink()
    with pytest.raises(FileNotFoundError, match=rf"lists shard\(s\) \['{SHARD}'\] that are not in"):
        from_hf(sharded, device='cpu')

def test_hf_truncated_shard(sharded):
    b = (sharded / SHARD).read_bytes()
    (sharded / SHARD).write_bytes(b[:len(b) - 100])
    with pytest.raises(ValueError, match=rf'{SHARD} cannot be read as safetensors \(truncated or corrupt\?\)'):
        from_hf(sharded, device='cpu')

def test_hf_tensor_shape_mismatch(sharded):
    name = 'model.transformer.blocks.0.ff_proj.weight'
    cfg = json.loads((sharded / 'config.json').read_text())
    h, d = cfg['mlp_hidden_size'], cfg['d_model']
    rewrite(sharded, lambda sd: {k: (torch.zeros(h + 1, d) if k == name else v) for k, v in sd.items()})
    with pytest.raises(ValueError, match=rf"tensor '{name}' has shape \({h + 1}, {d}\), but config.json implies \({h}, {d}\)"):
        from_hf(sharded, device='cpu')

def test_hf_tensor_not_in_config(sharded):
    name = 'model.transformer.blocks.2.q_proj.weight'                     # a third layer in a 2-layer config
    rewrite(sharded, lambda sd: {**sd, name: torch.zeros(32, 32)} if 'model.transformer.wte.weight' in sd else sd)
    with pytest.raises(ValueError, match=rf"tensor '{name}' is not part of a LLaDA model with this config.json \(2 layers"):
        from_hf(sharded, device='cpu')

def test_hf_tensor_missing(sharded):
    name = 'model.transformer.ln_f.weight'
    rewrite(sharded, lambda sd: {k: v for k, v in sd.items() if k != name})
    with pytest.raises(ValueError, match=rf"tensor\(s\) \['{name}'\] \(1 in all\) are in no file"):
        from_hf(sharded, device='cpu')

def test_hf_pickled_weights_refused(sharded):
    for f in sharded.glob('model*'): f.unlink()
    (sharded / 'pytorch_model.bin').write_bytes(b'not read')
    with pytest.raises(ValueError, match=r"holds only pickled weights \['pytorch_model.bin'\]: mmdiff never unpickles"):
        from_hf(sharded, device='cpu')

def test_hf_dtype_the_device_cannot_run(sharded):
    with pytest.raises(ValueError, match=r'dtype torch.float8_e4m3fn cannot run on cpu'):
        from_hf(sharded, device='cpu', dtype=torch.float8_e4m3fn)
    with pytest.raises(ValueError, match=r"unknown dtype 'half-ish'"):
        from_hf(sharded, device='cpu', dtype='half-ish')


def test_tied_model_ignores_a_saved_head(tmp_path):
    "A tied checkpoint that also saved an output head: the head stays the embedding (as the release ties it)."
    d = Path(shutil.copytree(FIX / 'llada_tied', tmp_path / 'tied'))
    sd = load_file(str(d / 'model.safetensors'))
    sd['model.transformer.ff_out.weight'] = torch.randn_like(sd['model.transformer.wte.weight'])
    save_file(sd, str(d / 'model.safetensors'))
    model = from_hf(d, device='cpu', dtype='float32')
    ref = load_file(str(d / 'reference.safetensors'))
    assert model.head.weight is model.tok_emb.weight
    assert torch.allclose(model(ref['ids']), ref['logits'], atol=1e-4, rtol=0)
