"""Tests of mmdiff.multimodal: the MaskGIT image sampler (schedule, restriction to image codes, CFG, inpainting), captioning,
text infilling, and a short training run on a toy text-to-image task that the sampler must solve."""
import math
import tempfile

import pytest
import torch
import torch.nn as nn

from mmdiff.vocab import train_vocab, TEXT, IMAGE
from mmdiff.data import format_t2i, format_mmu
from mmdiff.model import Denoiser, ModelConfig
from mmdiff.sample import num_transfer_tokens
from mmdiff.multimodal import generate_image_codes, caption_codes, infill, cosine_masked, t2i_input, mmu_input

K, N, L = 16, 9, 24
CAPS = ['a red square', 'a blue circle', 'two green dots', 'red', 'blue', 'green']


def g(s): return torch.Generator().manual_seed(s)


@pytest.fixture(scope='module')
def vocab(): return train_vocab(CAPS * 5, n_text=300, n_image_codes=K)


@pytest.fixture(scope='module')
def model(vocab):
    torch.manual_seed(0)
    return Denoiser(ModelConfig(vocab_size=len(vocab), max_len=64, d_model=32, n_layer=1, n_head=2)).eval()


class Spy(nn.Module):
    "Records every call's inputs and logits; optionally adds a bias to the logits."
    def __init__(self, m, bias=None):
        super().__init__(); self.m, self.bias, self.calls = m, bias, []
    @property
    def cfg(self): return self.m.cfg
    def forward(self, ids, **kw):
        out = self.m(ids, **kw)
        if self.bias is not None: out = out + self.bias
        self.calls.append(dict(ids=ids.clone(), logits=out.clone(), **{k: v.clone() for k, v in kw.items()}))
        return out


def trace_run(model, vocab, captions, **kw):
    trace = []
    out = generate_image_codes(model, vocab, captions, N, L, callback=lambda s, x: trace.append(x), **kw)
    return out, trace


# ----------------------------------------------------------------------------------------------- image sampler
@pytest.mark.parametrize('T', [1, 2, 5, 8, 16])
def test_schedule_prompt_codes_commits(model, vocab, T):
    out, trace = trace_run(model, vocab, CAPS[:3], steps=T, generator=g(T))
    start = torch.stack([t2i_input(vocab, c, N, L)['ids'] for c in CAPS[:3]])
    assert len(trace) == T and out.shape == (3, N) and ((out >= 0) & (out < K)).all()
    prev = start
    for s, x in enumerate(trace, 1):
        assert torch.equal(x[:, :-N - 1], start[:, :-N - 1]) and torch.equal(x[:, -1], start[:, -1])    # prompt fixed
        img = x[:, -N - 1:-1]
        assert (((img >= vocab.image_offset) & (img < vocab.mask_id)) | (img == vocab.mask_id)).all()
        want = math.floor(N * math.cos(math.pi / 2 * s / T)) if s < T else 0
        assert (img == vocab.mask_id).sum(-1).tolist() == [want] * 3                                    # cosine schedule
        was = prev[:, -N - 1:-1] != vocab.mask_id
        assert torch.equal(img[was], prev[:, -N - 1:-1][was])                                           # committed fixed
        prev = x
    assert torch.equal(trace[-1][:, -N - 1:-1] - vocab.image_offset, out)


def test_restricted_to_image_codes(model, vocab):
    bias = torch.zeros(len(vocab)); bias[[3, vocab.eos_id, vocab.pad_id, vocab.mask_id]] = 1e4
    out = generate_image_codes(Spy(model, bias), vocab, ['red', 'blue'], N, L, steps=4, generator=g(0))
    assert ((out >= 0) & (out < K)).all()


def test_temperature_zero_is_argmax(model, vocab):
    spy, trace = Spy(model), []
    out = generate_image_codes(spy, vocab, ['red', 'blue'], N, L, steps=5, temperature=0., callback=lambda s, x: trace.append(x))
    for call, x in zip(spy.calls, trace):
        newly = (call['ids'] == vocab.mask_id) & (x != vocab.mask_id)
        amax = call['logits'][..., vocab.image_offset:vocab.mask_id].argmax(-1) + vocab.image_offset
        assert newly.any() and torch.equal(x[newly], amax[newly])
    assert torch.equal(out, generate_image_codes(model, vocab, ['red', 'blue'], N, L, steps=5, temperature=0.))


def test_seeded_deterministic(model, vocab):
    a = generate_image_codes(model, vocab, CAPS, N, L, steps=6, generator=g(1))
    assert torch.equal(a, generate_image_codes(model, vocab, CAPS, N, L, steps=6, generator=g(1)))
    assert not torch.equal(a, generate_image_codes(model, vocab, CAPS, N, L, steps=6, generator=g(2)))


def test_cfg_zero_is_plain_and_uncond_input(model, vocab):
    spy = Spy(model)
    a = generate_image_codes(spy, vocab, CAPS, N, L, steps=4, cfg_scale=0., generator=g(3))
    assert len(spy.calls) == 4 and spy.calls[0]['ids'].shape[0] == len(CAPS)
    assert torch.equal(a, generate_image_codes(model, vocab, CAPS, N, L, steps=4, generator=g(3)))
    spy = Spy(model)
    generate_image_codes(spy, vocab, CAPS, N, L, steps=4, cfg_scale=1.5, generator=g(3))
    unc = t2i_input(vocab, '', N, L)
    for call in spy.calls:
        c, u = call['ids'].chunk(2)
        assert torch.equal(u[:, :-N - 1], unc['ids'][:-N - 1].expand(len(CAPS), -1))   # empty caption, left-padded
        assert torch.equal(u[:, -N - 1:], c[:, -N - 1:])                               # same (partially generated) image slot
        assert torch.equal(call['attention_mask'].chunk(2)[1], unc['attention_mask'].expand(len(CAPS), -1))
        assert torch.equal(call['modality'].chunk(2)[1], unc['modality'].expand(len(CAPS), -1))


def test_cfg_formula(vocab):
    class CondFake(nn.Module):
        "cond rows: code0 = 1.0, code1 = 1.2; uncond rows: code0 = 0, code1 = 1.2 -> guided code0 = w+1."
        def forward(self, ids, modality=None, attention_mask=None):
            out = torch.full((*ids.shape, len(vocab)), -10.)
            after_bos = (ids == vocab.bos_id).int().argmax(-1) + 1
            is_unc = ids.gather(1, after_bos[:, None])[:, 0] == vocab.eos_id
            out[..., vocab.image_offset + 1] = 1.2
            out[..., vocab.image_offset] = torch.where(is_unc, 0., 1.)[:, None]
            return out
    assert (generate_image_codes(CondFake(), vocab, ['red'], N, L, steps=3, temperature=0.) == 1).all()
    assert (generate_image_codes(CondFake(), vocab, ['red'], N, L, steps=3, temperature=0., cfg_scale=1.) == 0).all()


def test_inpainting_keeps_codes(model, vocab):
    init = torch.randint(0, K, (3, N), generator=g(0)); keep = torch.rand(3, N, generator=g(1)) < 0.4
    keep[1] = False; keep[2] = True
    out, trace = trace_run(model, vocab, CAPS[:3], steps=5, init_codes=init, keep=keep, generator=g(4), cfg_scale=1.)
    assert torch.equal(out[keep], init[keep])
    n0 = (~keep).sum(-1)
    for s, x in enumerate(trace, 1):
        img = x[:, -N - 1:-1]
        assert torch.equal(img[keep] - vocab.image_offset, init[keep])
        assert torch.equal((img == vocab.mask_id).sum(-1), cosine_masked(n0, s, 5))


@pytest.mark.parametrize('kw,msg', [
    (dict(steps=0), 'steps must be >= 1, got 0'),
    (dict(cfg_scale=-0.5), 'got -0.5'),
    (dict(temperature=-1.), 'temperature'),
    (dict(init_codes=torch.zeros(1, N, dtype=torch.long)), 'go together'),
    (dict(init_codes=torch.zeros(2, N, dtype=torch.long), keep=torch.ones(2, N, dtype=torch.bool)), '(1, 9)'),
    (dict(init_codes=torch.full((1, N), K), keep=torch.ones(1, N, dtype=torch.bool)), '[0, 16)'),
])
def test_image_bad_input(model, vocab, kw, msg):
    with pytest.raises(ValueError, match=msg.replace('(', r'\(').replace(')', r'\)').replace('[', r'\[')):
        generate_image_codes(model, vocab, ['red'], N, L, **kw)


def test_caption_too_long(model, vocab):
    with pytest.raises(ValueError, match='exceeds seq_len=24'): generate_image_codes(model, vocab, ['a red square'], 20, L)
    with pytest.raises(ValueError, match='max_len=64'): generate_image_codes(model, vocab, ['red'], N, 100)


# ----------------------------------------------------------------------------------------------- captioning
def test_caption_codes(model, vocab):
    codes = torch.randint(0, K, (2, N), generator=g(0))
    spy = Spy(model)
    out = caption_codes(spy, vocab, codes, L, steps=4, temperature=0.)
    assert len(out) == 2 and all(isinstance(c, str) for c in out) and len(spy.calls) == 4
    c0 = spy.calls[0]
    assert torch.equal(c0['ids'][:, 2:N + 2] - vocab.image_offset, codes)
    assert (c0['ids'][:, N + 4:] == vocab.mask_id).all()
    assert (c0['modality'][:, N + 3:] == TEXT).all() and (c0['modality'][:, 1:N + 3] == IMAGE).all()
    assert caption_codes(model, vocab, codes, L, steps=4, temperature=0.) == out
    with pytest.raises(ValueError, match=r'\[0, 16\)'): caption_codes(model, vocab, codes + K, L)
    with pytest.raises(ValueError, match='exceeds seq_len'): caption_codes(model, vocab, codes, N + 4)


# ----------------------------------------------------------------------------------------------- infilling
@pytest.mark.parametrize('T', [1, 3, 7])
def test_infill_only_masked(model, vocab, T):
    ids = format_mmu(vocab, torch.arange(N), 'a red square', L)['ids'][None].repeat(3, 1)
    holes = torch.rand(ids.shape, generator=g(0)) < 0.3; holes[:, 0] = True; holes[2] = False
    x_in = ids.masked_fill(holes, vocab.mask_id)
    trace = []
    out = infill(model, vocab, x_in, T, temperature=1., generator=g(T), callback=lambda s, x: trace.append(x))
    assert torch.equal(out[~holes], x_in[~holes]) and (out != vocab.mask_id).all()
    n, prev = num_transfer_tokens(holes, T), x_in
    for i, x in enumerate(trace):
        assert torch.equal(((prev == vocab.mask_id) & (x != vocab.mask_id)).sum(-1), n[:, i])
        assert torch.equal(x[prev != vocab.mask_id], prev[prev != vocab.mask_id]); prev = x
    with pytest.raises(ValueError, match='steps must be >= 1'): infill(model, vocab, x_in, 0)


# ----------------------------------------------------------------------------------------------- does it work
def test_toy_t2i_learns(vocab):
    "Caption str(k) -> fixed random pattern k: after ~15 s of training the sampler reproduces every pattern."
    from mmdiff.train import Trainer, TrainConfig
    from mmdiff.loss import MaskedDiffusion
    tv = train_vocab([str(k) for k in range(8)] * 4, n_text=300, n_image_codes=16)
    pat = torch.randint(0, 16, (8, 16), generator=g(0))
    LT = 1 + 3 + 16 + 2

    class Toy(torch.utils.data.Dataset):
        def __len__(self): return 4096
        def __getitem__(self, i): return format_t2i(tv, str(i % 8), pat[i % 8], LT)

    torch.manual_seed(0)
    tm = Denoiser(ModelConfig(vocab_size=len(tv), max_len=LT, d_model=64, n_layer=2, n_head=4))
    with tempfile.TemporaryDirectory() as d:
        Trainer(tm, MaskedDiffusion(tv.mask_id), Toy(), TrainConfig(out_dir=d, max_steps=400, batch_size=32, lr=3e-3, warmup_steps=20,
                                                                    eval_every=0, progress=False, cpu=True)).fit()
    out = generate_image_codes(tm.eval(), tv, [str(k) for k in range(8)], 16, LT, steps=8, generator=g(0))
    assert (out == pat).float().mean() > 0.9
