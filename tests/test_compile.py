"""`TrainConfig(compile=True)`: training through `torch.compile` gives the same losses and weights as eager training, and
its checkpoints are plain (no `_orig_mod.` prefixes) and load with `load_model` and `Trainer.load_checkpoint`.

TorchInductor compiles CPU kernels with a C++ compiler; without one the test is skipped. On one CPU thread the first
compiled step takes ~30-60 s (forward and backward graphs), the rest of the test a few seconds."""
import os, shutil, tempfile
from pathlib import Path
import pytest
import torch

from mmdiff.core import seed_everything
from mmdiff.model import Denoiser, ModelConfig
from mmdiff.loss import MaskedDiffusion
from mmdiff.train import Trainer, TrainConfig, load_model, load_weights

CXX = [c for c in (os.environ.get('CXX'), 'g++', 'c++', 'clang++') if c and shutil.which(c)]
pytestmark = pytest.mark.skipif(not CXX, reason='no C++ compiler (g++, c++, clang++ or $CXX) on PATH: TorchInductor needs one to compile CPU kernels')

V, L, STEPS = 40, 16, 4


class RandomTokens(torch.utils.data.Dataset):
    "Fixed random sequences (no prompt): enough to check that two training runs agree."
    def __init__(self, n=64):
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(0, V - 1, (n, L), generator=g)
    def __len__(self): return len(self.ids)
    def __getitem__(self, i): return dict(ids=self.ids[i], prompt=torch.zeros(L, dtype=torch.bool))


def trainer(out, compile: bool) -> Trainer:
    seed_everything(0)
    model = Denoiser(ModelConfig(vocab_size=V, max_len=L, d_model=32, n_layer=2, n_head=2))
    cfg = TrainConfig(out_dir=str(out), max_steps=STEPS, batch_size=8, warmup_steps=2, lr=1e-2, eval_every=0, progress=False,
                      compile=compile, cpu=True)
    return Trainer(model, MaskedDiffusion(V - 1), RandomTokens(), cfg)


def test_compiled_training_matches_eager(tmp_path):
    torch.set_num_threads(1)
    eager = trainer(tmp_path / 'eager', False); he = eager.fit()
    comp = trainer(tmp_path / 'compiled', True); hc = comp.fit()
    assert isinstance(comp.train_model, torch._dynamo.eval_frame.OptimizedModule), 'compile=True did not compile the training forward'
    assert comp.model is comp.raw_model and isinstance(comp.raw_model, Denoiser)

    # same losses step by step, same weights at the end (fused kernels reorder float sums: close, not bit-equal)
    le, lc = [r['loss'] for r in he], [r['loss'] for r in hc]
    assert le[-1] < le[0], f'eager loss did not go down: {le}'
    torch.testing.assert_close(torch.tensor(lc), torch.tensor(le), rtol=1e-4, atol=1e-5, msg=lambda m: f'losses differ: eager {le}, compiled {lc}\n{m}')
    sd_e, sd_c = eager.raw_model.state_dict(), comp.raw_model.state_dict()
    assert sd_e.keys() == sd_c.keys()
    for k in sd_e: torch.testing.assert_close(sd_c[k], sd_e[k], rtol=1e-3, atol=1e-4, msg=lambda m: f'{k} differs after {STEPS} steps\n{m}')

    # the checkpoint has plain names and loads both ways
    ckpt = tmp_path / 'compiled' / f'checkpoint-{STEPS:07d}'
    names = load_weights(ckpt / 'model.safetensors').keys()
    assert not [k for k in names if '_orig_mod' in k], f'compiled checkpoint has prefixed names: {sorted(names)[:3]}'
    assert names == sd_e.keys()
    x = torch.randint(0, V, (2, L))
    with torch.no_grad(): torch.testing.assert_close(load_model(ckpt)(x), comp.raw_model.eval()(x))
    fresh = trainer(tmp_path / 'compiled', True); fresh.load_checkpoint(ckpt)   # resume into a compiled trainer
    assert fresh.step == STEPS
    for k, v in fresh.raw_model.state_dict().items(): assert torch.equal(v, sd_c[k]), k
