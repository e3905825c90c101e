"""Every bad input gives a clear `ValueError` (or `FileNotFoundError` for missing files) whose message names the problem."""
import pytest
import torch

from mmdiff.vocab import train_vocab
from mmdiff.data import Reversal, format_sft
from mmdiff.schedule import sample_t
from mmdiff.model import Denoiser, ModelConfig
from mmdiff.sample import generate
from mmdiff.train import TrainConfig, save_model, load_model, load_weights
from mmdiff.recipes import TextDataConfig, build_text_data

V, MAX_LEN = 12, 16
MASK = V - 1


@pytest.fixture(scope='module')
def vocab():
    return train_vocab(Reversal().examples(100), n_text=280, n_image_codes=4)

@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return Denoiser(ModelConfig(vocab_size=V, max_len=MAX_LEN, d_model=16, n_layer=1, n_head=2)).eval()

def gen(model, prompt=None, **kw):
    args = dict(steps=4, gen_length=4, block_length=4, mask_id=MASK)
    args.update(kw)
    return generate(model, torch.tensor([[1, 2, 3]]) if prompt is None else prompt, **args)


# ----------------------------------------------------------------------------------------------- generate
def test_generate_good_call_works(model):  # the baseline the bad calls below depart from
    assert gen(model).shape == (1, 7)

def test_gen_length_not_divisible_by_block_length(model):
    with pytest.raises(ValueError, match=r'gen_length=6 is not divisible by block_length=4'):
        gen(model, gen_length=6, block_length=4)

def test_steps_not_divisible_by_blocks(model):
    with pytest.raises(ValueError, match=r'steps=3 is not divisible by the number of blocks 2'):
        gen(model, steps=3, gen_length=4, block_length=2)

@pytest.mark.parametrize('k', ['steps', 'gen_length', 'block_length'])
def test_nonpositive_lengths(model, k):
    with pytest.raises(ValueError, match=r'must be >= 1'):
        gen(model, **{k: 0})

def test_prompt_plus_gen_longer_than_context(model):
    with pytest.raises(ValueError, match=r"= 17 exceeds the model's context of 16"):
        gen(model, prompt=torch.ones(1, 13, dtype=torch.long), steps=4, gen_length=4, block_length=4)

def test_mask_id_inside_prompt(model):
    with pytest.raises(ValueError, match=r'prompt contains mask_id=11 at position\(s\) \[1\]'):
        gen(model, prompt=torch.tensor([[1, MASK, 2]]))

def test_empty_prompt(model):
    with pytest.raises(ValueError, match=r'prompt is empty'):
        gen(model, prompt=torch.zeros(1, 0, dtype=torch.long))

@pytest.mark.parametrize('bad', [V + 3, -1])
def test_prompt_token_out_of_range(model, bad):
    with pytest.raises(ValueError, match=r'prompt token ids must lie in \[0, 12\)'):
        gen(model, prompt=torch.tensor([[1, bad, 2]]))

def test_mask_id_outside_vocab(model):
    with pytest.raises(ValueError, match=r'mask_id=50 is outside the model'):
        gen(model, mask_id=50)

def test_one_dimensional_prompt(model):
    with pytest.raises(ValueError, match=r'prompt must be a \(B, P\) tensor.*\(3,\)'):
        gen(model, prompt=torch.tensor([1, 2, 3]))

def test_prompt_not_a_tensor(model):
    with pytest.raises(ValueError, match=r'prompt must be a \(B, P\) tensor.*list'):
        gen(model, prompt=[[1, 2, 3]])

def test_unknown_remasking(model):
    with pytest.raises(ValueError, match=r"unknown remasking 'lowest'.*low_confidence"):
        gen(model, remasking='lowest')


# ----------------------------------------------------------------------------------------------- model
def test_model_token_out_of_range(model):
    with pytest.raises(ValueError, match=r'token ids must lie in \[0, 12\), got range \[0, 12\]'):
        model(torch.tensor([[0, 1, V]]))
    with pytest.raises(ValueError, match=r'token ids must lie in'):
        model(torch.tensor([[-1, 1]]))

def test_model_wrong_rank(model):
    with pytest.raises(ValueError, match=r'ids must be a \(B, L\) tensor, got \(3,\)'):
        model(torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r'ids must be a \(B, L\) tensor, got \(1, 1, 3\)'):
        model(torch.zeros(1, 1, 3, dtype=torch.long))

def test_model_wrong_dtype(model):
    with pytest.raises(ValueError, match=r'ids must be integer, got torch.float32'):
        model(torch.zeros(1, 3))

def test_model_too_long(model):
    with pytest.raises(ValueError, match=r"sequence length 17 exceeds the model's max_len=16"):
        model(torch.zeros(1, MAX_LEN + 1, dtype=torch.long))

def test_model_modality_shape(model):
    with pytest.raises(ValueError, match=r'modality shape \(1, 2\) != ids shape \(1, 3\)'):
        model(torch.zeros(1, 3, dtype=torch.long), modality=torch.zeros(1, 2, dtype=torch.long))

def test_model_config_d_model_not_divisible():
    with pytest.raises(ValueError, match=r'd_model=30 is not divisible by n_head=4'):
        ModelConfig(d_model=30, n_head=4)

def test_model_config_odd_head_width():
    with pytest.raises(ValueError, match=r'head width 3 must be even for RoPE'):
        ModelConfig(d_model=12, n_head=4)


# ----------------------------------------------------------------------------------------------- vocab
@pytest.mark.parametrize('bad', [10_000, -1])
def test_vocab_decode_out_of_range(vocab, bad):
    with pytest.raises(ValueError, match=rf'token id {bad} at position 1 is outside the vocabulary \[0, {vocab.vocab_size}\)'):
        vocab.decode([0, bad])

def test_vocab_decode_2d_tensor(vocab):
    with pytest.raises(ValueError, match=r'expected a 1-D sequence of ids, got shape \(1, 2\)'):
        vocab.decode(torch.zeros(1, 2, dtype=torch.long))

@pytest.mark.parametrize('bad', [123, b'abc', None, ['a']])
def test_vocab_encode_non_str(vocab, bad):
    with pytest.raises(ValueError, match=r'encode expects a str, got ' + type(bad).__name__):
        vocab.encode(bad)

def test_vocab_unknown_special(vocab):
    with pytest.raises(ValueError, match=r"unknown special token 'mask'"):
        vocab.special_id('mask')

def test_vocab_load_missing(tmp_path):
    from mmdiff.vocab import Vocab
    with pytest.raises(FileNotFoundError, match=r'tokenizer.json not found'):
        Vocab.load(tmp_path)

def test_vocab_image_codes_out_of_range(vocab):
    with pytest.raises(ValueError, match=r'image codes must lie in \[0, 4\)'):
        vocab.image_ids(torch.tensor([0, 4]))


# ----------------------------------------------------------------------------------------------- configs
def test_config_unknown_key():
    with pytest.raises(ValueError, match=r"ModelConfig: unknown field\(s\) \['d_modle'\]"):
        ModelConfig.from_dict(dict(d_modle=32))
    with pytest.raises(ValueError, match=r"TrainConfig: unknown field\(s\) \['lr_max'\]"):
        TrainConfig.from_dict(dict(lr_max=1e-3))

@pytest.mark.parametrize('d, msg', [(dict(d_model='32'), r"'d_model' must be int, got '32' \(str\)"),
                                    (dict(d_model=True), r"'d_model' must be int, got True \(bool\)"),
                                    (dict(d_model=32.0), r"'d_model' must be int, got 32.0 \(float\)"),
                                    (dict(rope_theta='1e4'), r"'rope_theta' must be float")])
def test_config_wrong_type(d, msg):
    with pytest.raises(ValueError, match=msg):
        ModelConfig.from_dict(d)

def test_config_from_non_dict():
    with pytest.raises(ValueError, match=r'expected a dict, got list'):
        ModelConfig.from_dict([1, 2])

def test_config_int_accepted_for_float():  # the one coercion that is allowed
    assert ModelConfig.from_dict(dict(rope_theta=500)).rope_theta == 500

def test_train_config_bad_values():
    with pytest.raises(ValueError, match=r"mixed_precision must be 'no', 'bf16' or 'fp16', got 'fp8'"):
        TrainConfig(mixed_precision='fp8')
    with pytest.raises(ValueError, match=r'batch_size must be >= 1, got 0'):
        TrainConfig(batch_size=0)


# ----------------------------------------------------------------------------------------------- checkpoints
@pytest.fixture
def saved(model, tmp_path):
    save_model(model, tmp_path)
    return tmp_path

def test_load_model_round_trip(saved, model):
    m2 = load_model(saved)
    x = torch.tensor([[1, 2, 3]])
    with torch.no_grad(): assert torch.equal(m2(x), model(x))

def test_load_truncated_safetensors(saved):
    f = saved / 'model.safetensors'
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(ValueError, match=r'model\.safetensors is truncated or corrupt'):
        load_model(saved)

def test_load_corrupt_safetensors(saved):
    f = saved / 'model.safetensors'
    f.write_bytes(b'\x00' * 8 + b'not a safetensors header' * 10)
    with pytest.raises(ValueError, match=r'model\.safetensors is truncated or corrupt'):
        load_model(saved)

def test_load_empty_safetensors(saved):
    (saved / 'model.safetensors').write_bytes(b'')
    with pytest.raises(ValueError, match=r'model\.safetensors is truncated or corrupt'):
        load_weights(saved / 'model.safetensors')

def test_load_missing_weights(saved):
    (saved / 'model.safetensors').unlink()
    with pytest.raises(FileNotFoundError, match=r'model\.safetensors does not exist'):
        load_model(saved)

def test_load_folder_without_config(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'no config file at .*model\.json'):
        load_model(tmp_path)

def test_load_corrupt_config(saved):
    (saved / 'model.json').write_text('{"d_model": 16,')
    with pytest.raises(ValueError, match=r'model\.json is not valid JSON'):
        load_model(saved)

def test_load_weights_not_matching_config(saved):
    cfg = ModelConfig.load(saved / 'model.json')
    cfg.replace(n_layer=2).save(saved / 'model.json')
    with pytest.raises(ValueError, match=r'model\.safetensors does not match .*model\.json: missing'):
        load_model(saved)


# ----------------------------------------------------------------------------------------------- data, schedule
def test_format_sft_too_long(vocab):
    with pytest.raises(ValueError, match=r'= 12 tokens exceeds seq_len=8'):
        format_sft(vocab, list(range(5)), list(range(5)), seq_len=8)
    assert format_sft(vocab, list(range(3)), list(range(3)), seq_len=8)['ids'].shape == (8,)  # exactly fits

def test_build_text_data_unknown_task():
    with pytest.raises(ValueError, match=r"unknown task\(s\) \['sorting'\]; known: \['addition', 'reversal'\]"):
        build_text_data(TextDataConfig(tasks='reversal,sorting'))

@pytest.mark.parametrize('low, high', [(0.5, 0.5), (0.6, 0.4), (-0.1, 0.5), (0.2, 1.5)])
def test_sample_t_bad_interval(low, high):
    with pytest.raises(ValueError, match=rf'need 0 <= low < high <= 1, got low={low}, high={high}'):
        sample_t(4, low, high)
