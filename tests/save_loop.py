"""Save checkpoints in a loop, for tests/test_checkpoints.py to SIGKILL at random moments.
Every saved checkpoint has all its weights equal to its step, so the test can check each one's content.
Usage: python tests/save_loop.py OUT_DIR N_SAVES"""
import sys
import torch
from mmdiff.core import seed_everything
from mmdiff.model import Denoiser, ModelConfig
from mmdiff.loss import MaskedDiffusion
from mmdiff.train import Trainer, TrainConfig, latest_checkpoint

out, n = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(1); seed_everything(0)
cfg = ModelConfig(vocab_size=64, max_len=16, d_model=256, n_layer=4, n_head=4)   # ~3 M parameters: ~12 MB of weights, 24 MB of Adam state
ds = [dict(ids=torch.randint(0, 63, (16,)), prompt=torch.zeros(16, dtype=torch.bool)) for _ in range(4)]
tr = Trainer(Denoiser(cfg), MaskedDiffusion(63), ds, TrainConfig(out_dir=out, batch_size=2, keep_checkpoints=2, progress=False, warmup_steps=1))
if (ck := latest_checkpoint(out)) is not None: tr.load_checkpoint(ck)
else: tr.train_step()                                        # fills the optimizer state
print('ready', flush=True)
for _ in range(n):
    tr.step += 1
    with torch.no_grad():
        for p in tr.raw_model.parameters(): p.fill_(tr.step)
    tr.save_checkpoint()
    print('saved', tr.step, flush=True)
