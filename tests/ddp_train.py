"""Tiny training run used by tests/test_distributed.py: run it with `python` (one process) or under
`accelerate launch --multi_gpu --num_processes 2` (CPU DDP with ACCELERATE_USE_CPU=1).
Usage: python tests/ddp_train.py OUT_DIR BATCH_SIZE GRAD_ACCUM STEPS"""
import sys
import torch
from mmdiff.core import seed_everything
from mmdiff.vocab import train_vocab
from mmdiff.data import Reversal, TaskDataset
from mmdiff.model import Denoiser, ModelConfig
from mmdiff.loss import MaskedDiffusion
from mmdiff.train import Trainer, TrainConfig

out, batch_size, grad_accum, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(1)
vocab = train_vocab(Reversal().examples(300), n_text=280)
ds = TaskDataset(vocab, Reversal(3, 4), seq_len=24, n=256)
seed_everything(0)  # the same initial weights on every process (DDP also broadcasts rank 0's)
model = Denoiser(ModelConfig(vocab_size=vocab.vocab_size, max_len=24, d_model=32, n_layer=2, n_head=2))
cfg = TrainConfig(out_dir=out, max_steps=steps, batch_size=batch_size, grad_accum=grad_accum, lr=1e-2, warmup_steps=2,
                  eval_every=0, progress=False, seed=3)
Trainer(model, MaskedDiffusion(vocab.mask_id), ds, cfg).fit()
