"""Checkpoints: exact resume, crash safety (a process SIGKILLed mid-save loses nothing), clear errors for damaged files, no pickle."""
import json, os, pickle, random, re, signal, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest
import torch

from mmdiff.core import seed_everything
from mmdiff.vocab import train_vocab
from mmdiff.data import Reversal, TaskDataset
from mmdiff.model import Denoiser, ModelConfig
from mmdiff.loss import MaskedDiffusion
from mmdiff.train import Trainer, TrainConfig, latest_checkpoint, load_model, _torch_load

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'PYTHONPATH': str(ROOT)}


@pytest.fixture(scope='module')
def task():
    voc = train_vocab(Reversal().examples(300), n_text=280)
    return voc, TaskDataset(voc, Reversal(3, 4), seq_len=24, n=256)

def make(task, out, steps=12, **kw):
    voc, ds = task
    seed_everything(0)
    model = Denoiser(ModelConfig(vocab_size=voc.vocab_size, max_len=24, d_model=32, n_layer=2, n_head=2))
    cfg = TrainConfig(out_dir=str(out), max_steps=steps, batch_size=8, warmup_steps=3, eval_every=0, progress=False, lr=1e-2, **kw)
    return Trainer(model, MaskedDiffusion(voc.mask_id), ds, cfg, val_ds=ds)


# ----------------------------------------------------------------------------------------------- resume
def test_resume_is_exact(task, tmp_path):
    "N steps in one go == N/2 steps, checkpoint, a fresh trainer resumes, N/2 steps: same fp32 weights, losses, data order, RNG."
    full = make(task, tmp_path / 'full'); h_full = full.fit(); rng_full = torch.get_rng_state()
    half = make(task, tmp_path / 'half'); half.fit(until=6)
    assert latest_checkpoint(tmp_path / 'half').name == 'checkpoint-0000006'
    res = make(task, tmp_path / 'half'); h_res = res.fit(resume=True); rng_res = torch.get_rng_state()
    assert [r['step'] for r in h_res] == list(range(7, 13))
    assert [r['loss'] for r in h_res] == [r['loss'] for r in h_full[6:]]           # same data and masking noise, bit for bit
    for k, v in full.raw_model.state_dict().items():
        assert v.dtype == torch.float32 and torch.equal(res.raw_model.state_dict()[k], v), f'{k} differs after resume'
    so, sr = full.opt.state_dict()['state'], res.opt.state_dict()['state']
    assert all(torch.equal(so[i]['exp_avg_sq'], sr[i]['exp_avg_sq']) for i in so)   # optimizer state too
    assert (full.step, full.micro, full.sched.last_epoch) == (res.step, res.micro, res.sched.last_epoch)
    assert torch.equal(rng_full, rng_res)                                            # global torch RNG where the full run left it

def test_resume_restores_rng_states(task, tmp_path):
    tr = make(task, tmp_path, steps=2); tr.fit()
    torch.manual_seed(123); np.random.seed(5); random.seed(7)
    st = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    tr.save_checkpoint()
    torch.rand(3); np.random.rand(3); random.random()                                # move every generator on
    tr.load_checkpoint(latest_checkpoint(tmp_path))
    assert torch.equal(torch.get_rng_state(), st[0]) and np.array_equal(np.random.get_state()[1], st[1]) and random.getstate() == st[2]


# ----------------------------------------------------------------------------------------------- crash safety
def _check_complete(d: Path) -> int:
    "Every file of checkpoint `d` loads, and its weights are all equal to its step (as tests/save_loop.py writes them)."
    step = json.loads((d / 'state.json').read_text())['step']
    assert int(re.search(r'checkpoint-(\d+)', d.name).group(1)) == step
    m = load_model(d)
    assert all(bool((p == step).all()) for p in m.parameters()), f'{d}: weights are not all {step}'
    assert 'opt' in _torch_load(d / 'trainer.pt')
    return step

def test_sigkill_mid_save_loses_nothing(tmp_path):
    "SIGKILL a process that saves a 3 M-parameter checkpoint in a loop, at random moments, several times over the same folder."
    rng, mid_write, rounds = random.Random(0), 0, 0
    last_saved = 0
    while rounds < 8 and (mid_write < 2 or rounds < 4):
        rounds += 1
        log = tmp_path / f'log{rounds}.txt'
        with open(log, 'w') as f:
            p = subprocess.Popen([sys.executable, str(ROOT / 'tests' / 'save_loop.py'), str(tmp_path / 'run'), '1000'],
                                 cwd=ROOT, env=ENV, stdout=f, stderr=subprocess.STDOUT)
        t0 = time.time()
        while 'saved' not in log.read_text() and p.poll() is None and time.time() - t0 < 60: time.sleep(0.02)
        assert p.poll() is None, log.read_text()
        time.sleep(rng.uniform(0, 0.8))
        p.send_signal(signal.SIGKILL); p.wait()
        saved = [int(l.split()[1]) for l in log.read_text().splitlines() if l.startswith('saved')]
        run = tmp_path / 'run'
        mid_write += any(run.glob('.checkpoint-*.tmp'))                              # it died while writing a checkpoint
        latest = run / (run / 'latest').read_text().strip()                          # `latest` always names a complete checkpoint
        assert _check_complete(latest) >= max(saved) > last_saved                   # no reported save was lost
        assert latest_checkpoint(run) == latest
        ckpts = sorted(run.glob('checkpoint-*'))
        assert 1 <= len(ckpts) <= 3 and latest in ckpts
        for d in ckpts: _check_complete(d)                                          # no earlier checkpoint damaged
        last_saved = max(saved)
    print(f'{rounds} kills, {mid_write} while a checkpoint was being written')
    assert mid_write >= 1, 'no kill landed inside a save'


# ----------------------------------------------------------------------------------------------- damaged files
@pytest.fixture
def ckpt(task, tmp_path):
    tr = make(task, tmp_path, steps=2); tr.fit()
    return tr, latest_checkpoint(tmp_path)

def test_truncated_trainer_state(ckpt):
    tr, d = ckpt
    f = d / 'trainer.pt'; f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(ValueError, match=r'checkpoint-0000002/trainer\.pt is truncated or corrupt'):
        tr.load_checkpoint(d)

def test_corrupt_weights(ckpt):
    tr, d = ckpt
    f = d / 'model.safetensors'; b = bytearray(f.read_bytes()); b[8:40] = b'#' * 32; f.write_bytes(bytes(b))
    with pytest.raises(ValueError, match=r'checkpoint-0000002/model\.safetensors is truncated or corrupt'):
        tr.load_checkpoint(d)

def test_corrupt_state_json(ckpt):
    tr, d = ckpt
    (d / 'state.json').write_text('{"step": 2, "mic')
    with pytest.raises(ValueError, match=r'checkpoint-0000002/state\.json is truncated or corrupt'):
        tr.load_checkpoint(d)

def test_incomplete_checkpoint(ckpt):
    tr, d = ckpt
    (d / 'state.json').unlink()
    with pytest.raises(FileNotFoundError, match=r'checkpoint-0000002 is not a complete checkpoint \(no state\.json\)'):
        tr.load_checkpoint(d)

def test_weights_of_another_model(ckpt, task, tmp_path):
    tr, d = ckpt
    other = Denoiser(ModelConfig(vocab_size=task[0].vocab_size, max_len=24, d_model=32, n_layer=1, n_head=2))
    tr2 = Trainer(other, MaskedDiffusion(task[0].mask_id), task[1], tr.cfg)
    with pytest.raises(ValueError, match=r'model\.safetensors does not match this model: missing \[\], unexpected \[.blocks\.1'):
        tr2.load_checkpoint(d)

class _Evil:
    def __reduce__(self): return (os.system, (f'touch {os.environ.get("EVIL_MARK", "/tmp/mmdiff_evil")}',))

@pytest.mark.filterwarnings('ignore:Detected pickle protocol')
def test_pickle_payload_is_not_executed(ckpt, tmp_path, monkeypatch):
    "trainer.pt is read with weights_only=True: a pickled callable is refused, not run."
    tr, d = ckpt
    mark = tmp_path / 'pwned'; monkeypatch.setenv('EVIL_MARK', str(mark))
    (d / 'trainer.pt').write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(ValueError, match=r'trainer\.pt is truncated or corrupt'):
        tr.load_checkpoint(d)
    assert not mark.exists()

def test_no_unsafe_loads_in_the_library():
    "No pickle.load anywhere; every torch.load passes weights_only=True."
    for f in sorted((ROOT / 'mmdiff').glob('*.py')):
        src = f.read_text()
        assert not re.search(r'pickle\.loads?\(|cloudpickle|dill\.load', src), f'{f.name} unpickles'
        for call in re.findall(r'torch\.load\([^\n]*', src):
            assert 'weights_only=True' in call, f'{f.name}: {call}'

def test_newer_checkpoint_format_refused(ckpt):
    tr, d = ckpt
    st = json.loads((d / 'state.json').read_text()); assert st['version'] == 1
    (d / 'state.json').write_text(json.dumps({**st, 'version': 2}))
    with pytest.raises(ValueError, match=r'state\.json: checkpoint format version 2 is not supported \(this mmdiff .* reads versions 1\.\.1\)'):
        tr.load_checkpoint(d)

def test_checkpoint_without_version_loads(ckpt):  # written before the version was recorded
    tr, d = ckpt
    st = json.loads((d / 'state.json').read_text()); del st['version']
    (d / 'state.json').write_text(json.dumps(st))
    tr.load_checkpoint(d); assert tr.step == 2

def test_invalid_train_config_in_checkpoint(ckpt):
    tr, d = ckpt
    cfg = json.loads((d / 'train.json').read_text()); cfg['batch_size'] = 0
    (d / 'train.json').write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r'train\.json: batch_size must be >= 1, got 0'):
        tr.load_checkpoint(d)


# ----------------------------------------------------------------------------------------------- DataLoader workers
def test_worker_processes_build_the_same_batches(task, tmp_path):
    "`workers` > 0 builds batches in other processes; the batches, hence the losses and weights, are the same as in-process."
    h0 = make(task, tmp_path / 'w0', steps=4).fit()
    tr = make(task, tmp_path / 'w2', steps=4, workers=2); h2 = tr.fit()
    assert [r['loss'] for r in h0] == [r['loss'] for r in h2]
