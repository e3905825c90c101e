"""The installed `mmdiff` console script, run as a user runs it: exit status 0 on success, non-zero with a clear message
on bad input."""
import shutil, subprocess
from pathlib import Path
import pytest
import torch
from mmdiff.model import Denoiser, ModelConfig
from mmdiff.hf import save_llada
from mmdiff.chat import HFTokenizer

CHAT = Path(__file__).resolve().parent / 'fixtures' / 'chat' / 'llada_instruct'


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    "A tiny random LLaDA-format checkpoint carrying LLaDA-8B-Instruct's tokenizer files (ids and chat template)."
    d = tmp_path_factory.mktemp('ckpt')
    for f in ('tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json'):
        shutil.copy(CHAT / f, d)
    tok = HFTokenizer.from_dir(d)
    torch.manual_seed(0)
    model = Denoiser(ModelConfig(vocab_size=tok.vocab_size, max_len=64, d_model=16, n_layer=1, n_head=2, n_modalities=0))
    save_llada(model, d, extra_config={'mask_token_id': tok.mask_id})
    return d


def mmdiff(*args):
    return subprocess.run(['mmdiff', *map(str, args)], capture_output=True, text=True, timeout=300)


def test_generate_text_exits_0_and_prints_one_answer_per_prompt(checkpoint):
    r = mmdiff('generate-text', '--checkpoint', checkpoint, 'Hello!', 'Tell me a story.', '--gen-length', 8, '--steps', 8,
               '--block-length', 4, '--device', 'cpu', '--dtype', 'float32')
    assert r.returncode == 0, r.stderr
    assert 'loaded' in r.stderr and '2 answer(s)' in r.stderr
    assert len(r.stdout.splitlines()) >= 1                                   # random weights: answers may be empty strings


def test_generate_text_with_threshold_and_dual_cache(checkpoint):
    r = mmdiff('generate-text', '--checkpoint', checkpoint, 'Hi', '--gen-length', 8, '--block-length', 4, '--threshold', 0.9,
               '--cache', 'dual', '--device', 'cpu')
    assert r.returncode == 0, r.stderr


def test_generate_text_bad_folder_exits_nonzero_with_message(tmp_path):
    r = mmdiff('generate-text', '--checkpoint', tmp_path / 'missing', 'Hi', '--device', 'cpu')
    assert r.returncode == 2 and 'mmdiff: error:' in r.stderr and 'missing' in r.stderr


def test_help_exits_0():
    r = mmdiff('generate-text', '--help')
    assert r.returncode == 0 and '--checkpoint' in r.stdout and '--cache' in r.stdout
