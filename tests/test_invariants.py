"""Behavioural tests of the exported library: the maths of DESIGN.md §4 and the invariants of §6.

Everything is tiny (d_model 16-32, 1-2 layers) so the whole file runs in a few seconds on a laptop CPU.
"""
import math
import random

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings, strategies as st, HealthCheck

from mmdiff.vocab import Vocab, train_vocab, SPECIALS, TEXT, IMAGE, SPECIAL
from mmdiff.data import Reversal, Addition, format_sft
from mmdiff.schedule import Linear, Cosine, LogLinear, sample_t
from mmdiff.loss import forward_mask, pretrain_loss, sft_loss, maskgit_loss, MaskedDiffusion
from mmdiff.model import Denoiser, ModelConfig, Causal, Full
from mmdiff.sample import generate, num_transfer_tokens, add_gumbel_noise, LowConfidence, RandomRemask
from mmdiff.train import batch_indices

HYP = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SCHEDULES = [Linear(), Cosine(), LogLinear()]


# ----------------------------------------------------------------------------------------------- vocab
N_TEXT, N_IMG = 300, 16

@pytest.fixture(scope='module')
def vocab():
    corpus = Reversal().examples(200) + Addition().examples(200) + [
        "To be, or not to be, that is the question.", "Ünïcödé — naïve café, 東京, Ελληνικά, emoji 🙂\n\ttabs"] * 5
    return train_vocab(corpus, n_text=N_TEXT, n_image_codes=N_IMG)

@HYP
@given(s=st.text())
def test_vocab_roundtrip_unicode(vocab, s):
    assert vocab.decode(vocab.encode(s)) == s

@HYP
@given(s=st.text(alphabet='reverse: abc=+ add0123456789\n'))
def test_vocab_roundtrip_merged_text(vocab, s):  # text the merges were trained on: multi-byte tokens get used
    ids = vocab.encode(s)
    assert all(0 <= i < vocab.n_text for i in ids)
    assert vocab.decode(ids) == s
    assert vocab.decode(torch.tensor(ids, dtype=torch.long)) == s

def test_vocab_id_layout(vocab):
    assert vocab.n_text == N_TEXT
    specials = [vocab.special_id(s) for s in SPECIALS]
    assert specials == list(range(N_TEXT, N_TEXT + len(SPECIALS)))
    assert [vocab.pad_id, vocab.bos_id, vocab.eos_id, vocab.soi_id, vocab.eoi_id, vocab.t2i_id, vocab.mmu_id, vocab.lm_id] == specials
    assert vocab.special_id('eos') == vocab.special_id('<|eos|>') == vocab.eos_id
    assert vocab.image_offset == N_TEXT + len(SPECIALS)
    assert vocab.mask_id == vocab.image_offset + N_IMG == vocab.vocab_size - 1 == len(vocab) - 1
    codes = torch.arange(N_IMG)
    ids = vocab.image_ids(codes)
    assert ids.tolist() == list(range(vocab.image_offset, vocab.mask_id))
    assert torch.equal(vocab.image_codes(ids), codes)
    all_ids = torch.arange(vocab.vocab_size)
    mod = vocab.modality(all_ids)
    assert (mod[:N_TEXT] == TEXT).all() and (mod[N_TEXT:vocab.image_offset] == SPECIAL).all()
    assert (mod[vocab.image_offset:vocab.mask_id] == IMAGE).all() and mod[vocab.mask_id] == SPECIAL
    assert vocab.modality(all_ids, mask_modality=TEXT)[vocab.mask_id] == TEXT
    # specials, image codes and the mask decode by name, text between them decodes as text
    txt = vocab.encode('abc')
    s = vocab.decode([vocab.bos_id] + txt + [vocab.image_offset + 3, vocab.mask_id, vocab.eos_id])
    assert s == '<|bos|>abc<|img_3|><|mask|><|eos|>'
    assert vocab.decode([vocab.bos_id] + txt + [vocab.image_offset, vocab.mask_id], skip_special=True) == 'abc'

def test_vocab_save_load(vocab, tmp_path):
    vocab.save(tmp_path)
    v2 = Vocab.load(tmp_path)
    for k in ('n_text', 'n_image_codes', 'image_offset', 'mask_id', 'vocab_size', 'pad_id', 'eos_id', 'lm_id'):
        assert getattr(v2, k) == getattr(vocab, k), k
    for s in ('reverse: a b c = c b a', 'Ünïcödé 🙂 東京', ''):
        assert v2.encode(s) == vocab.encode(s)
        assert v2.decode(vocab.encode(s)) == s


# ----------------------------------------------------------------------------------------------- schedule
@pytest.mark.parametrize('sched', SCHEDULES, ids=lambda s: type(s).__name__)
def test_weight_is_elbo_weight(sched):
    "weight(t) = -alpha'(t) / (1 - alpha(t)) by autograd (Linear: LLaDA's 1/p = that / (1 - eps))."
    t = torch.linspace(0.01, 1.0, 200, dtype=torch.float64, requires_grad=True)
    a = sched.alpha(t)
    (da,) = torch.autograd.grad(a.sum(), t)
    exact = -da / (1 - a)
    w = sched.weight(t.detach())
    if isinstance(sched, Linear): exact = exact / (1 - sched.eps)
    torch.testing.assert_close(w, exact.detach(), rtol=1e-9, atol=1e-9)
    assert torch.allclose(1 - a, sched.mask_prob(t))

@pytest.mark.parametrize('sched', SCHEDULES, ids=lambda s: type(s).__name__)
def test_mask_prob_monotone_in_unit_interval(sched):
    t = torch.linspace(0, 1, 1001, dtype=torch.float64)
    p = sched.mask_prob(t)
    assert (p.diff() > 0).all()
    assert p.min() >= 0 and p.max() <= 1
    assert math.isclose(p[-1].item(), 1.0 if not isinstance(sched, LogLinear) else 1 - sched.eps, abs_tol=1e-12)

def test_linear_is_llada():
    t = torch.rand(100, dtype=torch.float64)
    torch.testing.assert_close(Linear().mask_prob(t), (1 - 1e-3) * t + 1e-3)

@HYP
@given(n=st.integers(1, 64), low=st.floats(0, 0.9), width=st.floats(0.01, 1.0), seed=st.integers(0, 2**31))
def test_sample_t_antithetic_one_per_stratum(n, low, width, seed):
    high = min(1.0, low + width)
    t = sample_t(n, low, high, antithetic=True, generator=torch.Generator().manual_seed(seed))
    assert t.shape == (n,)
    edges = low + (high - low) * torch.arange(n + 1, dtype=torch.float64) / n
    tol = 1e-6
    assert ((t.double() >= edges[:-1] - tol) & (t.double() <= edges[1:] + tol)).all()   # draw i lies in stratum i
    iid = sample_t(n, low, high, generator=torch.Generator().manual_seed(seed))
    assert ((iid >= low - tol) & (iid <= high + tol)).all()

def test_sample_t_iid_is_uniform():
    t = sample_t(20000, 0.2, 0.6, generator=torch.Generator().manual_seed(0))
    hist = torch.histc(t, bins=4, min=0.2, max=0.6) / len(t)
    assert (hist - 0.25).abs().max() < 5 * math.sqrt(0.25 * 0.75 / 20000)


# ----------------------------------------------------------------------------------------------- forward process
@pytest.mark.parametrize('sched', SCHEDULES, ids=lambda s: type(s).__name__)
def test_forward_mask_follows_schedule(sched):
    g = torch.Generator().manual_seed(0)
    B, L, P, mask_id = 400, 40, 8, 99
    x0 = torch.randint(0, 50, (B, L), generator=g)
    prompt = torch.zeros(B, L, dtype=torch.bool); prompt[:, :P] = True
    for tv in (0.05, 0.3, 0.7, 0.98):
        t = torch.full((B,), tv)
        xt, masked, p = forward_mask(x0, t, sched, mask_id, prompt, g)
        pt = sched.mask_prob(torch.tensor(tv)).item()
        torch.testing.assert_close(p, torch.full((B, L), pt))
        n = B * (L - P)
        std = math.sqrt(n * pt * (1 - pt))
        assert abs(masked[:, P:].sum().item() - n * pt) < 5 * std + 1, (tv, masked[:, P:].float().mean(), pt)
        assert not masked[:, :P].any()                                           # prompt never masked
        assert torch.equal(xt[~masked], x0[~masked])                             # xt = x0 off the mask
        assert (xt[masked] == mask_id).all()
        assert torch.equal(masked, xt == mask_id)                                # x0 holds no mask_id here

def test_forward_mask_per_token_t_and_seeded():
    "t of shape (B, L) (one t per block in block-wise training) masks each column at its own rate."
    B, L = 3000, 4
    t = torch.tensor([0.1, 0.4, 0.6, 0.9]).expand(B, L)
    x0 = torch.zeros(B, L, dtype=torch.long)
    _, masked, p = forward_mask(x0, t, Linear(), 7, generator=torch.Generator().manual_seed(1))
    frac, pt = masked.float().mean(0), Linear().mask_prob(t[0])
    assert ((frac - pt).abs() < 5 * (pt * (1 - pt) / B).sqrt()).all()
    a = forward_mask(x0, t, Linear(), 7, generator=torch.Generator().manual_seed(1))[1]
    assert torch.equal(a, masked)


# ----------------------------------------------------------------------------------------------- losses
def naive_ce(logits_row, target):
    return -(logits_row - logits_row.exp().sum().log())[target]   # not log_softmax: an independent formula

def naive_pretrain(logits, x0, masked, p):
    "LLaDA pretraining: sum over masked tokens of CE/p, divided by B*L."
    B, L = x0.shape
    tot = torch.zeros((), dtype=torch.float64)
    for b in range(B):
        for i in range(L):
            if masked[b, i]: tot += naive_ce(logits[b, i].double(), x0[b, i]) / p[b, i].double()
    return tot / (B * L)

def naive_sft(logits, x0, masked, p, prompt, weight=None):
    "LLaDA SFT: per sample, sum over masked tokens of CE * weight (1/p), divided by the answer length; mean over the batch."
    B, L = x0.shape
    tot = torch.zeros((), dtype=torch.float64)
    for b in range(B):
        s = torch.zeros((), dtype=torch.float64)
        for i in range(L):
            if masked[b, i]:
                w = 1 / p[b, i].double() if weight is None else weight[b].double()
                s += naive_ce(logits[b, i].double(), x0[b, i]) * w
        tot += s / int((~prompt[b]).sum())
    return tot / B

def _loss_case(seed, B=4, L=9, V=13):
    g = torch.Generator().manual_seed(seed)
    logits, x0 = 3 * torch.randn(B, L, V, generator=g), torch.randint(0, V - 1, (B, L), generator=g)
    plen = torch.randint(0, L - 1, (B,), generator=g)
    prompt = torch.arange(L)[None] < plen[:, None]
    t = torch.rand(B, generator=g)
    xt, masked, p = forward_mask(x0, t, Linear(), V - 1, prompt, g)
    return logits, x0, masked, p, prompt

@HYP
@given(seed=st.integers(0, 2**31))
def test_losses_equal_naive_formulas(seed):
    logits, x0, masked, p, prompt = _loss_case(seed)
    torch.testing.assert_close(pretrain_loss(logits, x0, masked, p).double(), naive_pretrain(logits, x0, masked, p), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(sft_loss(logits, x0, masked, p, prompt).double(), naive_sft(logits, x0, masked, p, prompt), rtol=1e-5, atol=1e-6)
    ce = torch.stack([naive_ce(logits[b, i].double(), x0[b, i]) for b, i in masked.nonzero().tolist()]) if masked.any() else torch.zeros(1, dtype=torch.float64)
    torch.testing.assert_close(maskgit_loss(logits, x0, masked).double(), ce.mean() if masked.any() else torch.tensor(0., dtype=torch.float64), rtol=1e-5, atol=1e-6)

def _tiny_model(V, L, seed=0, d=16, n_layer=1, attention=None):
    torch.manual_seed(seed)
    return Denoiser(ModelConfig(vocab_size=V, max_len=L, d_model=d, n_layer=n_layer, n_head=2), attention)

@pytest.mark.parametrize('per_answer', [True, False])
def test_masked_diffusion_objective_replays_llada_losses(per_answer):
    B, L, V = 4, 9, 13
    _, x0, _, _, prompt = _loss_case(7, B, L, V)
    m = _tiny_model(V, L)
    obj = MaskedDiffusion(V - 1, Linear(), per_answer=per_answer)
    loss, stats = obj(m, dict(ids=x0, prompt=prompt), torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)                                         # replay the same noise
    t = sample_t(B, antithetic=True, generator=g)
    xt, masked, p = forward_mask(x0, t, Linear(), V - 1, prompt, g)
    with torch.no_grad(): logits = m(xt)
    ref = sft_loss(logits, x0, masked, p, prompt) if per_answer else pretrain_loss(logits, x0, masked, p)
    naive = naive_sft(logits, x0, masked, p, prompt) if per_answer else naive_pretrain(logits, x0, masked, p)
    torch.testing.assert_close(loss.detach(), ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss.detach().double(), naive, rtol=1e-5, atol=1e-6)
    assert math.isclose(stats['mask_frac'], masked.float().mean().item())

@pytest.mark.parametrize('sched', [Cosine(), LogLinear()], ids=lambda s: type(s).__name__)
def test_masked_diffusion_objective_uses_schedule_weight(sched):
    B, L, V = 4, 9, 13
    _, x0, _, _, prompt = _loss_case(3, B, L, V)
    m = _tiny_model(V, L)
    obj = MaskedDiffusion(V - 1, sched, t_low=0.1, t_high=0.9)
    loss, _ = obj(m, dict(ids=x0, prompt=prompt), torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(2)
    t = sample_t(B, 0.1, 0.9, antithetic=True, generator=g)
    xt, masked, p = forward_mask(x0, t, sched, V - 1, prompt, g)
    with torch.no_grad(): logits = m(xt)
    torch.testing.assert_close(loss.detach().double(), naive_sft(logits, x0, masked, p, prompt, weight=sched.weight(t)), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------------- sampler
V_S, MASK_S, LEN_S = 12, 11, 24

class NoMaskLogits(nn.Module):
    "A random Denoiser whose [MASK] logit is pushed far down (as in a trained model), for tests that compare logits to formulas."
    def __init__(self, m, mask_id):
        super().__init__(); self.m, self.cfg, self.mask_id = m, m.cfg, mask_id
    def forward(self, ids, **kw):
        out = self.m(ids, **kw).clone(); out[..., self.mask_id] = -1e4
        return out

@pytest.fixture(scope='module')
def sampler_model():
    m = _tiny_model(V_S, LEN_S, seed=1, d=16, n_layer=1)
    with torch.no_grad():
        for p in m.parameters(): p.normal_(0, 0.5)        # sharper, more varied logits than the 0.02 init
    return m.eval()   # a raw random model: it often prefers [MASK], which generate must never commit

@st.composite
def gen_args(draw):
    block_length, n_blocks = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    steps_per_block = draw(st.integers(1, block_length + 1))     # more steps than tokens: some steps commit 0
    return dict(gen_length=block_length * n_blocks, block_length=block_length, steps=steps_per_block * n_blocks,
                cfg_scale=draw(st.sampled_from([0.0, 0.5, 2.0])), temperature=draw(st.sampled_from([0.0, 0.5, 1.0])),
                remasking=draw(st.sampled_from(['low_confidence', 'random'])))

@HYP
@given(kw=gen_args(), B=st.integers(1, 2), P=st.integers(1, 4), seed=st.integers(0, 2**31))
def test_generate_invariants(sampler_model, kw, B, P, seed):
    g = torch.Generator().manual_seed(seed)
    prompt = torch.randint(0, MASK_S, (B, P), generator=g)
    xs = [torch.cat([prompt, torch.full((B, kw['gen_length']), MASK_S)], 1)]
    steps_seen = []
    def cb(step, x): steps_seen.append(step); xs.append(x.clone())
    out = generate(sampler_model, prompt, mask_id=MASK_S, generator=g, callback=cb, **kw)
    bl, spb = kw['block_length'], kw['steps'] // (kw['gen_length'] // kw['block_length'])
    assert steps_seen == list(range(1, kw['steps'] + 1))
    assert torch.equal(out, xs[-1]) and out.shape == (B, P + kw['gen_length'])
    n_commit = num_transfer_tokens(torch.ones(B, bl, dtype=torch.bool), spb)    # (B, spb): block starts all-masked
    assert (n_commit.sum(-1) == bl).all()
    for k in range(1, len(xs)):
        prev, cur = xs[k - 1], xs[k]
        nb, i = (k - 1) // spb, (k - 1) % spb
        lo, hi = P + nb * bl, P + (nb + 1) * bl
        assert torch.equal(cur[:, :P], prompt)                                  # prompt unchanged
        changed = prev != cur
        assert (prev[changed] == MASK_S).all()                                  # committed tokens never change
        assert (cur[changed] != MASK_S).all()
        assert not changed[:, :lo].any() and not changed[:, hi:].any()          # only the current block moves
        assert torch.equal(changed.sum(-1), n_commit[:, i])                     # per-step commit count
        assert (cur[:, hi:] == MASK_S).all()                                    # later blocks untouched
        assert not (cur[:, :lo] == MASK_S).any()                                # earlier blocks finished
        if i == spb - 1: assert not (cur[:, lo:hi] == MASK_S).any()             # block done after its steps
    assert not (out == MASK_S).any()                                            # no mask left

@HYP
@given(kw=gen_args(), seed=st.integers(0, 2**31))
def test_generate_deterministic_with_seeded_generator(sampler_model, kw, seed):
    prompt = torch.randint(0, MASK_S, (2, 3), generator=torch.Generator().manual_seed(seed))
    a = generate(sampler_model, prompt, mask_id=MASK_S, generator=torch.Generator().manual_seed(seed), **kw)
    b = generate(sampler_model, prompt, mask_id=MASK_S, generator=torch.Generator().manual_seed(seed), **kw)
    assert torch.equal(a, b)

def test_generate_never_commits_mask_token():
    for seed in range(10):                                                      # plain freshly initialised Denoisers
        m = _tiny_model(V_S, LEN_S, seed=seed).eval()
        prompt = torch.randint(0, MASK_S, (4, 3), generator=torch.Generator().manual_seed(seed))
        out = generate(m, prompt, steps=8, gen_length=8, block_length=4, mask_id=MASK_S)
        assert not (out == MASK_S).any(), f"seed {seed}: {out}"

@HYP
@given(B=st.integers(1, 4), L=st.integers(1, 20), steps=st.integers(1, 12), seed=st.integers(0, 2**31))
def test_num_transfer_tokens_split(B, L, steps, seed):
    mask = torch.rand(B, L, generator=torch.Generator().manual_seed(seed)) < 0.6
    n = num_transfer_tokens(mask, steps)
    assert n.shape == (B, steps) and n.dtype == torch.int64
    m = mask.sum(-1)
    assert torch.equal(n.sum(-1), m)                                            # rows sum to the mask count
    for b in range(B):
        q, r = divmod(int(m[b]), steps)
        assert n[b].tolist() == [q + 1] * r + [q] * (steps - r)                 # even split, remainder first

@pytest.mark.parametrize('tau', [1.0, 0.5])
def test_gumbel_frequencies_match_softmax(tau):
    logits = torch.tensor([1.0, 0.0, -1.0, 2.0, 0.5, -3.0])
    N = 100_000
    g = torch.Generator().manual_seed(0)
    idx = add_gumbel_noise(logits.expand(N, -1), tau, g).argmax(-1)
    freq = torch.bincount(idx, minlength=len(logits)).double() / N
    p = torch.softmax(logits.double() / tau, -1)
    assert ((freq - p).abs() <= 5 * (p * (1 - p) / N).sqrt() + 1e-4).all(), (freq, p)
    assert torch.equal(add_gumbel_noise(logits, 0.0), logits)                   # tau = 0: argmax of the logits

def test_remasking_scores():
    g = torch.Generator().manual_seed(0)
    logits, x0 = torch.randn(2, 5, 7, generator=g), torch.randint(0, 7, (2, 5), generator=g)
    c = LowConfidence().confidence(logits, x0)
    torch.testing.assert_close(c, torch.softmax(logits.double(), -1).gather(-1, x0[..., None])[..., 0])
    r = RandomRemask().confidence(logits, x0, torch.Generator().manual_seed(1))
    assert r.dtype == torch.float64 and ((r >= 0) & (r < 1)).all()
    assert torch.equal(r, RandomRemask().confidence(logits, x0, torch.Generator().manual_seed(1)))

@pytest.mark.parametrize('scale', [0.0, 1.0, 3.0])
def test_cfg_formula(scale):
    "CFG: unconditional input = prompt replaced by [MASK]; logits = u + (s+1)(c - u); s = 0 is plain sampling."
    base = _sharp_model(V=V_S, L=LEN_S, seed=2)
    model = NoMaskLogits(base, MASK_S)
    seen = []
    class Spy(nn.Module):
        def __init__(s): super().__init__(); s.cfg = base.cfg
        def forward(s, ids): seen.append(ids.clone()); return model(ids)
    prompt = torch.tensor([[1, 2, 3], [4, 5, 6]])
    out = generate(Spy(), prompt, steps=1, gen_length=4, block_length=4, cfg_scale=scale, mask_id=MASK_S)
    x = torch.cat([prompt, torch.full((2, 4), MASK_S)], 1)
    if scale == 0:
        assert len(seen) == 1 and torch.equal(seen[0], x)
        want = model(x).argmax(-1)
    else:
        assert len(seen) == 1 and seen[0].shape == (4, 7)
        un = x.clone(); un[:, :3] = MASK_S
        assert torch.equal(seen[0], torch.cat([x, un]))
        c, u = model(x), model(un)
        want = (u + (scale + 1) * (c - u)).argmax(-1)
    assert torch.equal(out[:, 3:], want[:, 3:])                                 # one step commits all 4 argmaxes


# ----------------------------------------------------------------------------------------------- model
def _sharp_model(attention=None, V=20, L=12, seed=0):
    m = _tiny_model(V, L, seed=seed, d=32, n_layer=2, attention=attention)
    with torch.no_grad():
        for p in m.parameters(): p.normal_(0, 0.3)
    return m.eval()

def test_model_is_bidirectional():
    m = _sharp_model()
    x = torch.randint(0, 20, (3, 12), generator=torch.Generator().manual_seed(0))
    y = x.clone(); y[:, -1] = (y[:, -1] + 1) % 20
    with torch.no_grad(): a, b = m(x), m(y)
    assert ((a[:, 0] - b[:, 0]).abs().amax(-1) > 1e-4).all()                    # position 0 sees the last token

def test_causal_model_does_not_look_ahead():
    m = _sharp_model(Causal())
    x = torch.randint(0, 20, (3, 12), generator=torch.Generator().manual_seed(0))
    for j in (1, 5, 11):
        y = x.clone(); y[:, j:] = torch.randint(0, 20, y[:, j:].shape)
        with torch.no_grad(): a, b = m(x), m(y)
        torch.testing.assert_close(a[:, :j], b[:, :j], rtol=0, atol=1e-5)      # positions < j unaffected
        assert ((a[:, j] - b[:, j]).abs().amax(-1) > 1e-4).any()
        # same with an all-True attention mask (combined with the causal mask)
        with torch.no_grad(): c, d = m(x, attention_mask=torch.ones_like(x, dtype=torch.bool)), m(y, attention_mask=torch.ones_like(y, dtype=torch.bool))
        torch.testing.assert_close(c[:, :j], d[:, :j], rtol=0, atol=1e-5)

@pytest.mark.parametrize('attention', [Full(), Causal()], ids=['full', 'causal'])
def test_padding_keys_do_not_affect_real_positions(attention):
    m = _sharp_model(attention)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 20, (2, 12), generator=g)
    real = torch.ones(2, 12, dtype=torch.bool); real[0, 8:] = False; real[1, 3:5] = False   # tail padding, middle padding
    y = torch.where(real, x, torch.randint(0, 20, x.shape, generator=g))
    with torch.no_grad(): a, b = m(x, attention_mask=real), m(y, attention_mask=real)
    torch.testing.assert_close(a[real], b[real], rtol=0, atol=1e-5)
    with torch.no_grad(): short = m(x[:1, :8])                                    # tail padding == a shorter sequence
    torch.testing.assert_close(a[0, :8], short[0], rtol=0, atol=1e-4)
    assert torch.isfinite(a).all()


# ----------------------------------------------------------------------------------------------- train data order
@HYP
@given(n=st.integers(1, 40), b=st.integers(1, 9), seed=st.integers(0, 1000))
def test_batch_indices_epochs_are_permutations(n, b, seed):
    n_micro = (3 * n) // b + 2
    stream = [i for m in range(n_micro) for i in batch_indices(n, m, b, seed=seed)]
    for e in range(len(stream) // n):
        assert sorted(stream[e * n:(e + 1) * n]) == list(range(n))
    assert all(len(batch_indices(n, m, b, seed=seed)) == b for m in range(3))

@HYP
@given(n=st.integers(1, 40), b=st.integers(1, 6), world=st.integers(2, 4), micro=st.integers(0, 30), seed=st.integers(0, 1000))
def test_batch_indices_processes_split_one_global_batch(n, b, world, micro, seed):
    split = [i for r in range(world) for i in batch_indices(n, micro, b, r, world, seed)]
    assert split == batch_indices(n, micro, world * b, 0, 1, seed)
    if world == 2:
        assert batch_indices(n, micro, b, 0, 2, seed) + batch_indices(n, micro, b, 1, 2, seed) == batch_indices(n, micro, 2 * b, seed=seed)
