"""Tiny image-tokenizer run used by tests/test_imagetok.py: run it with `python` (one process) or under
`accelerate launch --multi_gpu --num_processes 2` (CPU DDP with ACCELERATE_USE_CPU=1).
Usage: python tests/ddp_tokenizer.py OUT_DIR BATCH_SIZE_PER_PROCESS STEPS

OUT_DIR/digits.u8 holds uint8 (N,1,8,8) images (the test writes the 1,500 training digits); they are read through a
memmap (`ImageArray`), a batch per step. Every process writes OUT_DIR/rank{r}.json (history) and rank{r}.safetensors
(all parameters and buffers of the trained tokenizer). The test compares them with `train_tokenizer` on the same
pixels as an in-memory tensor, without an Accelerator, with the same settings (KW below) and the global batch."""
import json, sys
from pathlib import Path
import numpy as np
import torch
from accelerate import Accelerator
from safetensors.torch import save_file
from mmdiff.imagetok import ImageArray, VQConfig, train_tokenizer

out, batch_size, steps = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(1)
acc = Accelerator(cpu=True)
path = out / 'digits.u8'
pixels = np.memmap(path, dtype=np.uint8, mode='r').reshape(-1, 1, 8, 8)            # (N,1,8,8), read a batch at a time
KW = dict(cfg=VQConfig(), lr=3e-3, warmup=5, seed=0, progress=False)   # tests/test_imagetok.py repeats these
tok, hist = train_tokenizer(ImageArray(pixels), steps=steps, batch_size=batch_size, accelerator=acc, **KW)
name = out / f'rank{acc.process_index}'
keep = {k: hist[k] for k in ('loss', 'mse', 'restarted')}
name.with_suffix('.json').write_text(json.dumps(dict(num_processes=acc.num_processes, **keep)))
save_file({k: v.detach().contiguous() for k, v in tok.state_dict().items()}, name.with_suffix('.safetensors'))
acc.wait_for_everyone()
acc.end_training()
