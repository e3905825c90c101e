"""Two-process CPU DDP (gloo) equals one process at the same global batch.

The masking noise is a pure function of (seed, data slot) and the data order of (seed, micro-batch), so
2 processes x batch b x grad_accum 1 see exactly the sequences and the noise of 1 process x batch b x
grad_accum 2: the loss curves and the final weights agree up to the order of float reductions
(gloo's all-reduce of the gradients vs. accumulation in one process). Tolerance: 1e-5 relative.
"""
import json, os, shutil, socket, subprocess, sys, time
from pathlib import Path
import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / 'tests' / 'ddp_train.py'
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'ACCELERATE_USE_CPU': '1', 'PYTHONPATH': str(ROOT)}
STEPS, B = 6, 8
RTOL = 1e-5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def run(cmd, out: Path):
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f'{cmd} failed:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}'
    print(f'{" ".join(map(str, cmd[:8]))}...: {time.perf_counter() - t:.1f} s')
    losses = [json.loads(l)['loss'] for l in (out / 'metrics.jsonl').read_text().splitlines()]
    ckpt = out / (out / 'latest').read_text().strip()
    return losses, load_file(ckpt / 'model.safetensors'), json.loads((ckpt / 'state.json').read_text())


@pytest.mark.skipif(shutil.which('accelerate') is None, reason='accelerate launcher not on PATH')
def test_two_process_ddp_equals_one_process(tmp_path):
    one, two = tmp_path / 'one', tmp_path / 'two'
    l1, w1, s1 = run([sys.executable, str(SCRIPT), str(one), str(B), '2', str(STEPS)], one)
    l2, w2, s2 = run(['accelerate', 'launch', '--multi_gpu', '--num_processes', '2', '--num_machines', '1', '--mixed_precision', 'no',
                      '--dynamo_backend', 'no', '--main_process_port', str(free_port()), str(SCRIPT), str(two), str(B), '1', str(STEPS)], two)
    assert s2['num_processes'] == 2 and s1['num_processes'] == 1            # it really ran two processes
    assert s1['micro'] == 2 * STEPS and s2['micro'] == STEPS and s1['step'] == s2['step'] == STEPS
    assert len(l1) == len(l2) == STEPS
    assert l1[-1] < l1[0], 'the run did not learn'
    print('max relative loss diff', max(abs(a - b) / abs(a) for a, b in zip(l1, l2)),
          'max weight diff', max((w1[k] - w2[k]).abs().max().item() for k in w1))
    for k, (a, b) in enumerate(zip(l1, l2)):
        assert abs(a - b) <= RTOL * abs(a), f'step {k + 1}: one process loss {a}, two processes {b}'
    for k in w1:
        assert torch.allclose(w1[k], w2[k], rtol=RTOL, atol=1e-6), f'{k}: max diff {(w1[k] - w2[k]).abs().max():.3g}'
