"""Block diffusion (mmdiff.block, BlockDiff in mmdiff.model, parallel decoding in mmdiff.sample): the BD3-LM mask,
the two limits (block size 1 = AR with a [MASK] input, block size n = full masked diffusion), the exact KV cache,
EOS stopping, threshold/factor decoding, training with the Trainer, and bad input.

Everything is tiny so the file runs in a few seconds on a CPU.
"""
import pytest
import torch
import torch.nn.functional as F

from mmdiff.model import Denoiser, ModelConfig, Full, Causal, BlockDiff, block_diff_mask, flex_available, flex_matches_dense
from mmdiff.loss import MaskedDiffusion
from mmdiff.sample import generate, generate_ar, Threshold, Factor
from mmdiff.block import BlockDiffusion, block_nelbo, generate_block, loss_variance, search_clip
from mmdiff.evaluate import nelbo
from mmdiff.train import Trainer, TrainConfig

V, MASK, EOS = 24, 23, 2


def tiny(attention=None, max_len=64, seed=0):
    torch.manual_seed(seed)
    return Denoiser(ModelConfig(vocab_size=V, max_len=max_len, d_model=32, n_layer=2, n_head=4), attention).eval()


def same_weights(src, attention):
    m = Denoiser(src.cfg, attention).eval(); m.load_state_dict(src.state_dict()); return m


class ListDS(torch.utils.data.Dataset):
    def __init__(self, ids, n_prompt=2):
        self.ids, self.n_prompt = ids, n_prompt
    def __len__(self): return len(self.ids)
    def __getitem__(self, i):
        p = torch.zeros(self.ids.shape[1], dtype=torch.bool); p[:self.n_prompt] = True
        return dict(ids=self.ids[i], prompt=p)


# ----------------------------------------------------------------------------------------------- the mask
@pytest.mark.parametrize('n,b', [(8, 1), (8, 2), (8, 4), (8, 8), (12, 3)])
def test_mask_definition(n, b):
    M = block_diff_mask(n, b)
    i, j = torch.arange(2 * n)[:, None], torch.arange(2 * n)[None]
    bi, bj, qn, kn = (i % n) // b, (j % n) // b, i < n, j < n
    want = (qn & kn & (bi == bj)) | (qn & ~kn & (bj < bi)) | (~qn & ~kn & (bj <= bi))
    assert torch.equal(M, want)
    assert not M[n:, :n].any()                                                    # clean never sees noisy
    assert torch.equal(M.diagonal(), torch.ones(2 * n, dtype=torch.bool))         # no empty rows


def test_mask_limits():
    n = 8
    assert block_diff_mask(n, n)[:n, :n].all() and not block_diff_mask(n, n)[:n, n:].any()
    assert torch.equal(block_diff_mask(n, 1)[:n, :n], torch.eye(n, dtype=torch.bool))
    assert torch.equal(block_diff_mask(n, 1)[:n, n:], torch.ones(n, n, dtype=torch.bool).tril(-1))
    assert torch.equal(block_diff_mask(n, 1)[n:, n:], torch.ones(n, n, dtype=torch.bool).tril())


# ----------------------------------------------------------------------------------------------- the two limits
def test_block_n_is_full_masked_diffusion():
    full = tiny()
    bn = same_weights(full, BlockDiff(16))
    x0 = torch.randint(0, MASK, (5, 16)); xt = torch.where(torch.rand(5, 16) < 0.5, MASK, x0)
    torch.testing.assert_close(bn(xt, clean=x0), full(xt), atol=1e-5, rtol=1e-5)
    batch = dict(ids=x0, prompt=torch.zeros_like(x0, dtype=torch.bool))
    a = BlockDiffusion(MASK, 16, antithetic=False)(bn, batch, torch.Generator().manual_seed(3))[0]   # i.i.d. t: same draws
    b = MaskedDiffusion(MASK, antithetic=False)(full, batch, torch.Generator().manual_seed(3))[0]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    ds = ListDS(x0)
    assert abs(block_nelbo(bn, ds, MASK, n_t=4)['nelbo'] - nelbo(full, ds, MASK, n_t=4)['nelbo']) < 1e-4


def test_block_1_is_autoregressive_with_mask_input():
    full = tiny()
    b1, causal = same_weights(full, BlockDiff(1)), same_weights(full, Causal())
    x0 = torch.randint(0, MASK, (3, 10)); allmask = torch.full_like(x0, MASK)
    got = b1(allmask, clean=x0)
    for i in range(10):
        torch.testing.assert_close(got[:, i], causal(torch.cat([x0[:, :i], allmask[:, :1]], 1))[:, -1], atol=1e-5, rtol=1e-5)
    # an unmasked noisy token contributes no loss; a masked one has exactly the AR-with-[MASK] loss, whatever the others are
    xt = torch.where(torch.rand(3, 10) < 0.5, MASK, x0)
    torch.testing.assert_close(b1(xt, clean=x0)[xt == MASK], got[xt == MASK], atol=1e-5, rtol=1e-5)
    # its NELBO estimates (1 - eps) x the exact NLL of that AR model
    ds = ListDS(x0, n_prompt=1)
    pr = torch.zeros_like(x0, dtype=torch.bool); pr[:, 0] = True
    ce = F.cross_entropy(b1(torch.where(pr, x0, MASK), clean=x0).transpose(1, 2), x0, reduction='none')
    exact = ((ce * ~pr).sum(-1) / (~pr).sum(-1)).mean().item()
    est = block_nelbo(b1, ds, MASK, n_t=400)
    assert abs(est['nelbo'] - (1 - 1e-3) * exact) < 4 * est['stderr'] + 0.02 * exact


def test_block_model_sees_only_earlier_clean_blocks():
    m = tiny(BlockDiff(4))
    x0 = torch.randint(0, MASK, (2, 12)); xt = torch.where(torch.rand(2, 12) < 0.5, MASK, x0)
    ref = m(xt, clean=x0)
    x0b = x0.clone(); x0b[:, 4:8] = (x0b[:, 4:8] + 1) % MASK                      # change clean block 1
    out = m(xt, clean=x0b)
    torch.testing.assert_close(out[:, :8], ref[:, :8], atol=1e-6, rtol=1e-6)      # noisy blocks 0, 1 do not see it
    assert not torch.allclose(out[:, 8:], ref[:, 8:])                             # noisy block 2 does
    xtb = xt.clone(); xtb[:, 0] = (xt[:, 0] + 1) % MASK                           # change a noisy token of block 0
    out = m(xtb, clean=x0)
    torch.testing.assert_close(out[:, 4:], ref[:, 4:], atol=1e-6, rtol=1e-6)      # other blocks never see noisy block 0


@pytest.mark.skipif(not flex_available(), reason='this torch has no torch.nn.attention.flex_attention')
def test_flex_attention_matches_dense_sdpa():
    # FlexAttention runs (unfused, forward only) on the CPU in torch >= 2.5; on a GPU it is compiled and gradients are compared too
    m = tiny(BlockDiff(4))
    x0 = torch.randint(0, MASK, (2, 16)); xt = torch.where(torch.rand(2, 16) < 0.5, MASK, x0)
    assert flex_matches_dense(m, xt, x0, eps=1e-5)
    if torch.cuda.is_available(): assert flex_matches_dense(m.cuda(), xt.cuda(), x0.cuda(), grads=True)


# ----------------------------------------------------------------------------------------------- cache and sampler
@pytest.mark.parametrize('kw', [dict(), dict(temperature=1.0), dict(temperature=0.8, top_p=0.7), dict(threshold=0.2),
                                dict(factor=1.0), dict(steps_per_block=2)])
@pytest.mark.parametrize('P', [1, 4, 6])
def test_cache_gives_same_tokens(kw, P):
    m = tiny(BlockDiff(4))
    prompt = torch.randint(0, MASK, (3, P))
    a, sa = generate_block(m, prompt, 24, mask_id=MASK, eos_id=EOS, generator=torch.Generator().manual_seed(0), return_stats=True, **kw)
    b, sb = generate_block(m, prompt, 24, mask_id=MASK, eos_id=EOS, generator=torch.Generator().manual_seed(0), use_cache=False,
                           return_stats=True, **kw)
    assert torch.equal(a, b) and sa.nfe == sb.nfe and sa.lengths == sb.lengths
    assert torch.equal(a[:, :P], prompt) and not (a == MASK).any()


def test_cache_matches_uncached_logits():
    m = tiny(BlockDiff(4))
    x = torch.randint(0, MASK, (2, 16))
    cache = m.new_cache()
    m(x[:, :8], cache=cache, update_cache=True)
    torch.testing.assert_close(m(x[:, 8:12], cache=cache), m(x[:, :12])[:, 8:], atol=1e-5, rtol=1e-5)
    m(x[:, 8:12], cache=cache, update_cache=True)
    assert len(cache) == 12
    torch.testing.assert_close(m(x[:, 12:], cache=cache), m(x)[:, 12:], atol=1e-5, rtol=1e-5)


def test_ar_kv_cache_decoding_same_tokens():
    ar = tiny(Causal())
    prompt = torch.randint(0, MASK, (2, 3))
    assert torch.equal(generate_ar(ar, prompt, 20), generate_ar(ar, prompt, 20, use_cache=True))


def test_eos_variable_length():
    class EosRow0(Denoiser):
        def forward(self, ids, *a, **kw):
            lg = super().forward(ids, *a, **kw); lg[0, :, EOS] += 100.; return lg
    base = tiny(BlockDiff(4)); m = EosRow0(base.cfg, BlockDiff(4)).eval(); m.load_state_dict(base.state_dict())
    prompt = torch.randint(3, MASK, (2, 4))
    out, st = generate_block(m, prompt, 20, mask_id=MASK, eos_id=EOS, return_stats=True)
    assert st.lengths[0] == 1 and (out[0, 4:] == EOS).all()
    row = out[1, 4:].tolist()
    assert st.lengths[1] == (row.index(EOS) + 1 if EOS in row else 20)
    if EOS in row: assert all(t == EOS for t in row[row.index(EOS):])


def test_nfe_counts():
    m = tiny(BlockDiff(4))
    prompt = torch.randint(0, MASK, (2, 4))
    _, st = generate_block(m, prompt, 32, mask_id=MASK, return_stats=True)
    assert st.nfe == 32                                                             # 8 blocks x 4 steps, no pass of its own for the cache
    assert st.tokens_run == 8 * (2 * 4 + 3 * 4)          # each block's first pass also stores the prompt / previous block
    _, st = generate_block(m, prompt, 32, mask_id=MASK, threshold=1e-9, return_stats=True)
    assert st.nfe == 8
    _, st = generate_block(m, prompt, 32, mask_id=MASK, threshold=0.5, return_stats=True)
    assert 8 <= st.nfe <= 32


# ----------------------------------------------------------------------------------------------- parallel decoding in LLaDA's sampler
def test_generate_default_unchanged_and_threshold():
    m = tiny()
    prompt = torch.randint(0, MASK, (2, 5))
    a = generate(m, prompt, 16, 16, 8, mask_id=MASK)
    b, st = generate(m, prompt, 16, 16, 8, mask_id=MASK, return_stats=True)
    assert torch.equal(a, b) and st.nfe == 16
    out, st = generate(m, prompt, 16, 16, 8, mask_id=MASK, threshold=1e-9, return_stats=True)
    assert st.nfe == 2 and not (out == MASK).any()
    out, st = generate(m, prompt, 16, 16, 8, mask_id=MASK, factor=2.0, return_stats=True)
    assert 2 <= st.nfe <= 16 and not (out == MASK).any()


def test_commit_rules():
    conf = torch.tensor([[0.99, 0.97, 0.6, -torch.inf]], dtype=torch.float64)
    assert Threshold(0.95).select(conf).tolist() == [[True, True, False, False]]
    assert Threshold(0.999).select(conf).tolist() == [[True, False, False, False]]
    # factor 0.2: n=1: 2*0.01=0.02 ok; n=2: 3*0.03=0.09 ok; n=3: 4*0.4=1.6 no
    assert Factor(0.2).select(conf).tolist() == [[True, True, False, False]]


# ----------------------------------------------------------------------------------------------- training and clipping
def test_trainer_trains_block_objective(tmp_path):
    torch.manual_seed(0)
    ids = torch.randint(3, 8, (64, 16)); ids[:, 1::2] = ids[:, 0::2]              # learnable: each odd token repeats the previous
    ds = ListDS(ids, n_prompt=1)
    m = Denoiser(ModelConfig(vocab_size=V, max_len=16, d_model=32, n_layer=1, n_head=2), BlockDiff(4))
    obj = BlockDiffusion(MASK, 4)
    before = block_nelbo(m.eval(), ds, MASK, n_t=4, n_seqs=32)['nelbo']
    cfg = TrainConfig(out_dir=str(tmp_path), max_steps=60, batch_size=16, lr=3e-3, warmup_steps=5, eval_every=0, progress=False, cpu=True)
    tr = Trainer(m.train(), obj, ds, cfg); tr.fit(); m = tr.raw_model
    after = block_nelbo(m.eval(), ds, MASK, n_t=4, n_seqs=32)['nelbo']
    assert after < before - 0.5, (before, after)


def test_clip_search_picks_least_variance():
    m = tiny(BlockDiff(4))
    ds = ListDS(torch.randint(0, MASK, (16, 16)))
    r = search_clip(m, ds, BlockDiffusion(MASK, 4), candidates=((0.0, 1.0), (0.5, 1.0)), n_draws=8)
    var = {(t['low'], t['high']): t['var'] for t in r['table']}
    assert r['best'] == min(var, key=var.get) == (0.5, 1.0)


# ----------------------------------------------------------------------------------------------- bad input
def test_bad_block_size():
    with pytest.raises(ValueError, match=r'block_size=3 does not divide the sequence length n=16'):
        block_diff_mask(16, 3)
    m = tiny(BlockDiff(3))
    with pytest.raises(ValueError, match=r'block_size=3 does not divide the sequence length n=16'):
        m(torch.zeros(1, 16, dtype=torch.long), clean=torch.zeros(1, 16, dtype=torch.long))
    with pytest.raises(ValueError, match=r'block_size=3 does not divide the sequence length n=16'):
        BlockDiffusion(MASK, 3)(m, dict(ids=torch.zeros(2, 16, dtype=torch.long), prompt=torch.zeros(2, 16, dtype=torch.bool)))
    with pytest.raises(ValueError, match=r'block_size must be an integer >= 1'):
        BlockDiff(0)


@pytest.mark.parametrize('tau', [0.0, -0.5, 1.01, 2.0])
def test_bad_threshold(tau):
    prompt = torch.randint(0, MASK, (1, 4))
    with pytest.raises(ValueError, match=r'threshold must lie in \(0, 1\]'):
        generate_block(tiny(BlockDiff(4)), prompt, 8, mask_id=MASK, threshold=tau)
    with pytest.raises(ValueError, match=r'threshold must lie in \(0, 1\]'):
        generate(tiny(), prompt, 8, 8, 8, mask_id=MASK, threshold=tau)


def test_cache_under_full_attention():
    m = tiny(Full())
    with pytest.raises(ValueError, match=r'a KV cache needs an attention mode in which no position attends to a later one'):
        m.new_cache()
    with pytest.raises(ValueError, match=r'a KV cache needs an attention mode'):
        generate_ar(m, torch.zeros(1, 2, dtype=torch.long), 4, use_cache=True)
    with pytest.raises(ValueError, match=r'needs BlockDiff attention'):
        generate_block(m, torch.zeros(1, 2, dtype=torch.long), 4, mask_id=MASK)
