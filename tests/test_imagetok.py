"Invariants of mmdiff.imagetok: quantizer maths, EMA codebook, FSQ bijection, VQ-VAE I/O, training, save/load."
import json, math, os, pickle, shutil, socket, subprocess, time
from pathlib import Path
from types import SimpleNamespace
import numpy as np
import pytest
import torch
from einops import rearrange
from safetensors.torch import load_file
from mmdiff.core import seed_everything
from mmdiff.imagetok import (VQConfig, Quantizer, VectorQuantizer, FSQ, VQVAE, code_stats, as_float_images,
                             recon_metrics, train_tokenizer, save, load, ImageArray)


def _grid(f, b=1, h=2):
    "(N,D) -> (b,D,h,N/(b*h))"
    return rearrange(f, '(b h w) d -> b d h w', b=b, h=h)


def test_code_stats():
    st = code_stats(torch.arange(16).repeat(5), 16)
    assert st['usage'] == 100.0 and st['perplexity'] == pytest.approx(16.0)
    st = code_stats(torch.tensor([0, 0, 0, 1]), 4)
    p = torch.tensor([0.75, 0.25])
    assert st['usage'] == 50.0 and st['perplexity'] == pytest.approx(math.exp(-(p * p.log()).sum().item()))


def test_vq_nearest_straight_through_and_commitment():
    g = torch.Generator().manual_seed(0)
    vq = VectorQuantizer(n_codes=5, dim=3, beta=0.25).eval()
    vq.codebook.copy_(torch.randn(5, 3, generator=g))
    f = torch.randn(12, 3, generator=g).requires_grad_()
    z_q, codes, loss, _ = vq(_grid(f, b=2, h=2))
    brute = torch.tensor([min(range(5), key=lambda k: (v - vq.codebook[k]).pow(2).sum().item()) for v in f.detach()])
    assert torch.equal(rearrange(codes, 'b h w -> (b h w)'), brute)
    e = vq.codebook[brute]
    assert torch.allclose(rearrange(z_q, 'b d h w -> (b h w) d'), e, atol=1e-6)
    grad, = torch.autograd.grad(z_q.sum(), f, retain_graph=True)
    assert torch.equal(grad, torch.ones_like(f))                      # straight-through: identity gradient
    assert loss.item() == pytest.approx(0.25 * (f - e).pow(2).mean().item(), rel=1e-5)
    grad, = torch.autograd.grad(loss, f)
    assert torch.allclose(grad, 0.5 * (f - e).detach() / f.numel(), atol=1e-7)


def test_vq_ema_matches_hand_computation_and_moves_toward_mean():
    g = torch.Generator().manual_seed(1)
    K, D, decay, eps = 4, 3, 0.8, 1e-2
    vq = VectorQuantizer(n_codes=K, dim=D, decay=decay, eps=eps, dead_threshold=0.0)
    cb = torch.randn(K, D, generator=g) * 3
    N0 = torch.rand(K, generator=g) + 0.5
    vq.codebook.copy_(cb); vq.cluster_size.copy_(N0); vq.embed_sum.copy_(cb * N0[:, None]); vq.initted.fill_(True)
    f = torch.randn(16, D, generator=g) * 3
    _, codes, _, _ = vq(_grid(f, b=2, h=2))
    codes = rearrange(codes, 'b h w -> (b h w)')
    # hand computation, one code at a time
    N = torch.stack([decay * N0[k] + (1 - decay) * (codes == k).sum() for k in range(K)])
    m = torch.stack([decay * cb[k] * N0[k] + (1 - decay) * f[codes == k].sum(0) for k in range(K)])
    Ns = (N + eps) / (N.sum() + K * eps) * N.sum()
    assert torch.allclose(vq.cluster_size, N, atol=1e-6)
    assert torch.allclose(vq.embed_sum, m, atol=1e-5)
    assert torch.allclose(vq.codebook, m / Ns[:, None], atol=1e-5)
    for k in codes.unique():
        mean = f[codes == k].mean(0)
        assert (vq.codebook[k] - mean).norm() < (cb[k] - mean).norm()


def test_vq_eval_and_encode_do_not_update():
    vq = VectorQuantizer(n_codes=8, dim=2)
    z = torch.randn(2, 2, 3, 3)
    vq.eval(); before = {k: v.clone() for k, v in vq.state_dict().items()}
    vq(z); vq.train(); vq.encode(z)
    for k, v in vq.state_dict().items(): assert torch.equal(v, before[k]), k


def test_dead_code_restart():
    vq = VectorQuantizer(n_codes=3, dim=2, decay=0.9, dead_threshold=0.5)
    vq.codebook.copy_(torch.tensor([[0., 0.], [1., 0.], [100., 100.]]))
    vq.embed_sum.copy_(vq.codebook); vq.initted.fill_(True)
    vq.cluster_size.copy_(torch.tensor([2.0, 2.0, 0.4]))
    f = torch.rand(8, 2)
    _, codes, _, stats = vq(_grid(f, b=2, h=2))
    assert 2 not in codes and stats['restarted'] == 1
    assert any(torch.equal(vq.codebook[2], r) for r in f)
    assert vq.cluster_size[2].item() == 0.5
    # first training batch initialises the codebook from the data
    vq = VectorQuantizer(n_codes=4, dim=2, decay=1.0, dead_threshold=0.0)   # decay 1: EMA keeps the init
    vq(_grid(f, b=2, h=2))
    assert vq.initted and all(any(torch.allclose(c, r) for r in f) for c in vq.codebook)


@pytest.mark.parametrize('levels', [(5, 3, 3), (8, 8), (4, 4, 4), (2, 3, 6)])
def test_fsq_bijection_and_grid(levels):
    fsq = FSQ(levels); K = math.prod(levels)
    assert fsq.n_codes == K and fsq.dim == len(levels)
    idx = torch.arange(K)
    vals = fsq.indices_to_codes(idx)
    assert torch.equal(fsq.codes_to_indices(vals), idx)
    assert len({tuple(v) for v in vals.tolist()}) == K
    for j, L in enumerate(levels): assert len(vals[:, j].unique()) == L   # exactly L_j values per channel
    # every code is reachable: its preimage under the bound quantizes back to it
    L = torch.tensor(levels); half_w, a, off = L // 2, (L - 1) * (1 + fsq.eps) / 2, (L % 2 == 0) * 0.5
    z = torch.atanh((vals * half_w + off) / a) - torch.atanh(off / a)
    assert torch.allclose(fsq.quantize(z), vals) and torch.equal(fsq.codes_to_indices(fsq.quantize(z)), idx)
    z = 4 * torch.randn(32, len(levels), 6, 6, requires_grad=True)
    zq, codes, aux, st = fsq(z)
    assert torch.equal(fsq.embed(codes), zq.detach()) and aux.item() == 0.0
    z = torch.randn(32, len(levels), 6, 6, requires_grad=True)       # unsaturated: tanh' > 0 in float32
    grad, = torch.autograd.grad(fsq(z)[0].sum(), z)
    assert (grad > 0).all()


def test_config():
    cfg = VQConfig(quantizer=FSQ, fsq_levels=[5, 3, 3])
    assert (cfg.quantizer, cfg.fsq_levels, cfg.levels) == ('FSQ', '5,3,3', (5, 3, 3))
    assert VQConfig.from_dict(cfg.to_dict()) == cfg
    assert set(Quantizer.registry) >= {'VectorQuantizer', 'FSQ'}
    for bad in [dict(down=3), dict(down=16), dict(quantizer='nope'), dict(fsq_levels='a,b')]:
        with pytest.raises(ValueError): VQConfig(**bad)


def test_vqvae_shapes_and_errors():
    seed_everything(0)
    for q, K in [(VectorQuantizer, 64), (FSQ, 64)]:
        m = VQVAE(VQConfig(quantizer=q))
        assert (m.grid, m.tokens_per_image, m.n_codes) == ((4, 4), 16, K)
        out = m(torch.rand(4, 1, 8, 8))
        out['recon_loss'].backward()
        assert m.encoder[0].weight.grad.abs().sum() > 0
        assert out['recon'].min() >= 0 and out['recon'].max() <= 1
        codes = m.encode(torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8))
        assert codes.shape == (3, 4, 4) and codes.dtype == torch.long
        assert m.decode(codes).shape == (3, 1, 8, 8)
    with pytest.raises(ValueError, match='shape'): m.encode(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match='dtype'): m.encode(torch.zeros(2, 1, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match=r'\[0,1\]'): m.encode(torch.full((2, 1, 8, 8), 16.0))
    with pytest.raises(ValueError, match='64'): m.decode(torch.full((1, 4, 4), 64))
    with pytest.raises(ValueError, match='64'): m.decode(torch.full((1, 4, 4), -1))
    with pytest.raises(ValueError, match='integer'): m.decode(torch.zeros(1, 4, 4))
    assert torch.equal(as_float_images(torch.tensor([0, 51, 255], dtype=torch.uint8)), torch.tensor([0., .2, 1.]))


@pytest.fixture(scope='module')
def digits():
    from sklearn.datasets import load_digits
    d = torch.tensor(load_digits().images, dtype=torch.float32)[:, None] / 16.0
    return d[:1500], d[1500:]                                       # train, held-out


@pytest.fixture(scope='module')
def trained(digits):
    return train_tokenizer(digits[0], steps=80, batch_size=64, progress=False, seed=0)


def test_training_reduces_mse(digits, trained):
    seed_everything(0)
    before = recon_metrics(VQVAE(), digits[1])
    m, hist = trained
    after = recon_metrics(m, digits[1])
    assert after['mse'] < 0.5 * before['mse']
    assert after['psnr'] == pytest.approx(10 * math.log10(1 / after['mse']))
    assert sum(hist['mse'][-10:]) < sum(hist['mse'][:10]) and len(hist['loss']) == 80
    assert not m.training


def test_save_load(tmp_path, digits, trained):
    m, _ = trained
    save(m, tmp_path / 'tok')
    m2 = load(tmp_path / 'tok')
    x = digits[1][:50]
    assert m2.cfg == m.cfg and torch.equal(m2.encode(x), m.encode(x))
    assert torch.equal(m2.decode(m.encode(x)), m.decode(m.encode(x)))
    (tmp_path / 'tok' / 'model.safetensors').write_bytes(b'garbage')
    with pytest.raises(ValueError, match='model.safetensors'): load(tmp_path / 'tok')
    (tmp_path / 'tok' / 'model.safetensors').unlink()
    with pytest.raises(FileNotFoundError, match='model.safetensors'): load(tmp_path / 'tok')
    with pytest.raises(FileNotFoundError, match='config.json'): load(tmp_path / 'missing')


def test_mostly_black_images_do_not_collapse_to_black():
    "The shapes are ~90% black. MSE through the sigmoid collapsed to an all-black decoder here (bright pixels decoded as ~0.0003, 13.2 dB);"
    " the BCE loss keeps learning the bright pixels (0.55, 16.9 dB after the same 200 steps)."
    from mmdiff.data import shapes, as_chw
    imgs, _, _ = shapes(600, seed=0); held, _, _ = shapes(200, seed=1)
    tok, hist = train_tokenizer(as_chw(imgs), VQConfig(image_size=16, channels=3, down=2, n_codes=32, hidden=16), steps=200, seed=0, progress=False)
    x = as_float_images(as_chw(held)); r = tok.decode(tok.encode(x))
    assert r[x > 0.5].mean() > 0.3                                   # bright pixels come back bright
    assert recon_metrics(tok, x)['psnr'] > 15.0
    assert hist['loss'][-1] < hist['loss'][0]


def test_patch_local_codes_are_a_function_of_the_patch(tmp_path):
    "patch_local=True: on the shapes every 2x2 patch content gets exactly one code (the black background one code), the code grid"
    " of an image does not change when pixels of other patches change, and save/load keeps the architecture."
    from mmdiff.data import shapes, as_chw
    imgs, _, _ = shapes(400, seed=0)
    cfg = VQConfig(image_size=16, channels=3, down=2, n_codes=64, hidden=16, patch_local=True)
    tok, _ = train_tokenizer(as_chw(imgs), cfg, steps=150, seed=0, progress=False)
    codes = tok.encode(as_chw(imgs))                                                     # (N, 8, 8)
    patches = rearrange(as_chw(imgs), 'n c (h p) (w q) -> (n h w) (c p q)', p=2, q=2)    # (N*64, 12)
    by = {}
    for p, c in zip(map(bytes, patches.numpy()), codes.flatten().tolist()): by.setdefault(p, set()).add(c)
    assert all(len(cs) == 1 for cs in by.values()) and len(by[bytes(12)]) == 1
    x = as_chw(imgs[:1]).clone(); y = x.clone(); y[..., :2, :2] = 255                    # paint patch (0, 0) white
    cx, cy = tok.encode(x), tok.encode(y)
    assert torch.equal(cx[..., 1:, :], cy[..., 1:, :]) and torch.equal(cx[..., 0, 1:], cy[..., 0, 1:])
    save(tok, tmp_path / 'tok'); tok2 = load(tmp_path / 'tok')
    assert tok2.cfg.patch_local and torch.equal(tok2.encode(x), cx)


def test_digit_tokenizer_quality_on_held_out_digits():
    "The quality check the 02_imagetok notebook shows (its full run is a slow cell): 300 steps of the default VQ-VAE on the"
    " 1,500 training digits give > 20 dB PSNR on the 297 held-out digits with more than half the codebook in use"
    " (measured: 22.1 dB, 100 % usage; 800 steps: 24.4 dB). A tokenizer that stops learning fails here."
    from mmdiff.data import digits, as_chw
    tr, _ = digits('train'); te, _ = digits('test')
    tok, hist = train_tokenizer(as_chw(tr), VQConfig(), steps=300, seed=0, progress=False)
    r = recon_metrics(tok, as_chw(te))
    assert r['psnr'] > 20.0 and r['usage'] > 50, r


class CountingImages(torch.utils.data.Dataset):
    "uint8 (C,H,W) images, one per `__getitem__`; counts the reads."
    def __init__(self, x): self.x, self.reads = x, 0
    def __len__(self): return len(self.x)
    def __getitem__(self, i):
        self.reads += 1
        return self.x[i]


def test_dataset_trains_like_the_tensor_a_batch_at_a_time(digits):
    "A Dataset of uint8 digits trains like the tensor of the same digits: the same seeded index stream, so the same"
    " losses and weights (bitwise: the tensor is contiguous). The DataLoader reads one image per drawn index (+1 for"
    " the first image's shape): 60 x 16 = 960 reads of 1,500 images, never the whole set. Held-out PSNR after these 60"
    " steps: 13.4 dB (untrained: 7.3 dB)."
    u8, held = [(x * 255).round().to(torch.uint8) for x in digits]
    ds = CountingImages(u8)
    kw = dict(steps=60, batch_size=16, warmup=10, seed=0, progress=False)
    mt, ht = train_tokenizer(u8, **kw)
    md, hd = train_tokenizer(ds, **kw)
    assert ds.reads == 60 * 16 + 1 < len(u8)
    for m, h in ((mt, ht), (md, hd)):
        assert sum(h['loss'][-10:]) < 0.8 * sum(h['loss'][:10])
        assert recon_metrics(m, held)['psnr'] > 12.0
    assert hd['loss'] == ht['loss']
    for k, v in mt.state_dict().items(): assert torch.equal(md.state_dict()[k], v), k


def test_memmap_read_by_a_worker_process(tmp_path, digits):
    "A np.memmap passed as it is (wrapped in ImageArray) and read by one DataLoader worker gives the tensor's run;"
    " pickled for a spawned worker, the memmap travels as its file name, not as the data set."
    u8 = (digits[0][:256] * 255).round().to(torch.uint8).numpy()            # (256,1,8,8)
    mm = np.memmap(tmp_path / 'px.u8', dtype=np.uint8, mode='w+', shape=u8.shape)
    mm[:] = u8
    mm.flush()
    ro = np.memmap(tmp_path / 'px.u8', dtype=np.uint8, mode='r', shape=u8.shape)
    assert len(pickle.dumps(ImageArray(ro))) < 1000 < len(pickle.dumps(ImageArray(u8)))
    assert torch.equal(pickle.loads(pickle.dumps(ImageArray(ro)))[255], torch.from_numpy(u8[255]))
    kw = dict(steps=8, batch_size=16, progress=False)
    _, hm = train_tokenizer(ro, workers=1, **kw)
    _, ht = train_tokenizer(torch.from_numpy(u8), **kw)
    assert hm['loss'] == ht['loss']


def test_dataset_errors(digits):
    ds = CountingImages((digits[0][:20] * 255).round().to(torch.uint8))
    one = dict(steps=1, progress=False)
    with pytest.raises(ValueError, match=r'\(N,1,16,16\)'): train_tokenizer(ds, VQConfig(image_size=16), **one)
    with pytest.raises(ValueError, match='Dataset'): train_tokenizer(list(ds.x), **one)
    with pytest.raises(ValueError, match=r'\(N,C,H,H\)'): train_tokenizer(CountingImages(torch.zeros(4, 8, 8)), **one)
    with pytest.raises(ValueError, match=r'\(N,C,H,W\)'): ImageArray(np.zeros((4, 8, 8), np.uint8))
    acc = SimpleNamespace(device=torch.device('cpu'), gradient_accumulation_steps=2)   # all these errors read of it
    with pytest.raises(ValueError, match='gradient accumulation'): train_tokenizer(ds, accelerator=acc, **one)
    with pytest.raises(ValueError, match='conflicts'): train_tokenizer(ds, accelerator=acc, device='meta', **one)


ROOT = Path(__file__).resolve().parents[1]
DDP_ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'ACCELERATE_USE_CPU': '1',
           'PYTHONPATH': str(ROOT)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which('accelerate') is None, reason='accelerate launcher not on PATH')
def test_two_process_tokenizer_equals_one_process(tmp_path, digits):
    "2 CPU processes x batch 16 under `accelerate launch` (tests/ddp_tokenizer.py, a memmap read through ImageArray)"
    " end with bitwise identical weights, codebooks and EMA buffers on both ranks, and follow one process x batch 32"
    " (the plain tensor run): the same restarts at the same steps, losses within 1e-5 relative (measured 1.1e-7: only"
    " the order of float sums differs), weights within 1e-5 (measured 1.9e-6). Without the all-reduce the ranks' EMA"
    " buffers end different and the loss is 4 % off by step 20."
    steps, b, out = 20, 16, tmp_path / 'two'
    px = (digits[0] * 255).round().to(torch.uint8)                           # (1500,1,8,8)
    out.mkdir()
    px.numpy().tofile(out / 'digits.u8')
    cmd = ['accelerate', 'launch', '--multi_gpu', '--num_processes', '2', '--num_machines', '1',
           '--mixed_precision', 'no', '--dynamo_backend', 'no', '--main_process_port', str(_free_port()),
           str(ROOT / 'tests' / 'ddp_tokenizer.py'), str(out), str(b), str(steps)]
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, env=DDP_ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f'{cmd} failed:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}'
    print(f'accelerate launch, 2 processes: {time.perf_counter() - t:.1f} s')
    (h2, w2), (h2b, w2b) = [(json.loads((out / f'rank{i}.json').read_text()), load_file(out / f'rank{i}.safetensors'))
                            for i in (0, 1)]
    assert h2['num_processes'] == h2b['num_processes'] == 2
    assert h2 == h2b and w2.keys() == w2b.keys()
    for k in w2: assert torch.equal(w2[k], w2b[k]), f'{k} differs between the ranks'
    assert len(h2['loss']) == steps and h2['loss'][-1] < 0.8 * h2['loss'][0], 'the run did not learn'
    tok, h1 = train_tokenizer(px, VQConfig(), steps=steps, batch_size=2 * b, lr=3e-3, warmup=5, seed=0, progress=False)
    w1 = tok.state_dict()
    assert w1.keys() == w2.keys() and h2['restarted'] == h1['restarted'] and sum(h1['restarted']) > 0   # restarts ran
    print('max relative loss diff', max(abs(x - y) / abs(x) for x, y in zip(h1['loss'], h2['loss'])),
          'max weight diff', max((w1[k].float() - w2[k].float()).abs().max().item() for k in w1))
    for i, (x, y) in enumerate(zip(h1['loss'], h2['loss'])):
        assert abs(x - y) <= 1e-5 * abs(x), f'step {i + 1}: one process loss {x}, two processes {y}'
    for k in w1: assert torch.allclose(w1[k].float(), w2[k].float(), rtol=1e-5, atol=1e-5), k
