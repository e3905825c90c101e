"""Tokenizers and chat templates of released diffusion LMs (mmdiff.chat): for every fixture in tests/fixtures/chat the
rendered conversations, their ids and decodes equal what transformers 4.46.3 produced (expected.json); the special ids;
decode round trips; each bad folder's error; generate_text on tiny models. transformers is never imported."""
import json, shutil, subprocess, sys
from pathlib import Path
import pytest
import torch
import mmdiff.chat as chat
from mmdiff.chat import HFTokenizer, ChatTemplate, TokenizerConfig, generate_text, cut_at_stop, encode_prompts
from mmdiff.model import Denoiser, ModelConfig, BlockDiff

FIX = Path(__file__).resolve().parent / 'fixtures' / 'chat'
RELEASES = ('llada_instruct', 'mmada_mixcot', 'dream_instruct', 'sdar_chat')
# release -> (bos, eos, eot, pad, mask, stop ids), as the release's files and sampling scripts give them
IDS = {'llada_instruct': (126080, 126081, 126348, 126081, 126336, (126348, 126081)),
       'mmada_mixcot': (126080, 126081, 126348, 126081, 126336, (126348, 126081)),
       'dream_instruct': (151665, 151643, 151645, 151643, 151666, (151645, 151643)),
       'sdar_chat': (None, 151643, 151645, 151643, 151669, (151645, 151643))}


@pytest.fixture(scope='module')
def toks():
    return {r: HFTokenizer.from_dir(FIX / r) for r in RELEASES}


def expected(release):
    return json.loads((FIX / release / 'expected.json').read_text(encoding='utf-8'))


def cases():
    return [(r, k) for r in RELEASES for k in expected(r)['conversations']]


@pytest.mark.parametrize('release,conv', cases())
def test_matches_transformers(toks, release, conv):
    "Rendered string (with and without the generation prompt), ids of both encode calls, decodes: as transformers."
    tok, c = toks[release], expected(release)['conversations'][conv]
    assert tok.apply_chat_template(c['messages'], add_generation_prompt=True) == c['rendered']
    assert tok.apply_chat_template(c['messages'], add_generation_prompt=False) == c['rendered_no_generation_prompt']
    assert tok.encode(c['rendered']) == c['input_ids_no_special']
    assert tok.encode_chat(c['messages']) == c['apply_chat_template_ids']
    assert tok.encode(c['rendered'], add_special_tokens=True) == c['input_ids']
    assert tok.decode(c['input_ids']) == c['decoded']
    assert tok.decode(c['input_ids'], skip_special_tokens=True) == c['decoded_skip_special']


@pytest.mark.parametrize('release', RELEASES)
def test_expected_files(release):
    "The expected outputs were written by transformers 4.46.3, for conversations with and without a system turn."
    e = expected(release)
    assert e['transformers'] == '4.46.3'
    assert set(e['conversations']) == {'user', 'system_user', 'multi_turn'}


@pytest.mark.parametrize('release', RELEASES)
def test_special_ids(toks, release):
    tok, e = toks[release], expected(release)
    bos, eos, eot, pad, mask, stops = IDS[release]
    got = (tok.bos_id, tok.eos_id, tok.eot_id, tok.pad_id, tok.mask_id, tok.stop_ids)
    assert got == (bos, eos, eot, pad, mask, stops)
    assert (tok.bos_id, tok.eos_id, tok.pad_id, tok.unk_id) == tuple(e['ids'][k] for k in ('bos', 'eos', 'pad', 'unk'))
    assert e['ids']['mask'] in (None, tok.mask_id)             # transformers has no mask id for LLaDA / MMaDA
    assert list(e['eot'].values()) == [tok.eot_id]
    assert tok.special_tokens_map == e['special_tokens_map']
    assert tok.vocab_size == max(tok.tokenizer.get_vocab(with_added_tokens=True).values()) + 1
    assert tok.vocab_size > tok.mask_id


def test_mask_tokens(toks):
    assert [toks[r].id_to_token(toks[r].mask_id) for r in RELEASES] == ['<|mdm_mask|>', '<|mdm_mask|>', '<|mask|>',
                                                                          '<|MASK|>']


@pytest.mark.parametrize('release', RELEASES)
@pytest.mark.parametrize('text', ['What is the capital of France?', '  spaces\tand\nnewlines ', 'héllo — 日本語 🙂',
                                  'x' * 300, '', '<|im_end|> and <|eot_id|> as text'])
def test_round_trip(toks, release, text):
    tok = toks[release]
    assert tok.decode(tok.encode(text)) == text


def test_decode_forms(toks):
    tok = toks['llada_instruct']
    ids = [tok.bos_id, *tok.encode('Paris'), tok.eot_id, tok.eos_id]
    assert tok.decode(torch.tensor(ids), skip_special_tokens=True) == 'Paris'
    assert tok.decode(ids) == '<|startoftext|>Paris<|eot_id|><|endoftext|>'
    with pytest.raises(ValueError, match='1-D'): tok.decode(torch.tensor([ids]))
    with pytest.raises(ValueError, match='outside the vocabulary'): tok.decode([tok.vocab_size])
    with pytest.raises(ValueError, match='outside the vocabulary'): tok.decode([-1])
    with pytest.raises(ValueError, match='encode expects a str'): tok.encode(None)


def test_dream_slow_special_tokens(toks):
    "Dream's slow tokenizer skips only the config's special tokens: <|im_end|> survives skip_special_tokens."
    d = toks['dream_instruct']
    ids = d.encode('<|im_start|>hi<|im_end|><|mask|><|endoftext|>')
    assert d.decode(ids, skip_special_tokens=True) == '<|im_start|>hi<|im_end|>'


def test_no_generation_prompt_in_llada_template(toks):
    "LLaDA's template writes the assistant header whatever add_generation_prompt says; Dream's and SDAR's do not."
    m = [{'role': 'user', 'content': 'hi'}]
    for r in ('llada_instruct', 'mmada_mixcot'):
        assert toks[r].apply_chat_template(m, add_generation_prompt=False) == toks[r].apply_chat_template(m)
    for r in ('dream_instruct', 'sdar_chat'):
        assert toks[r].apply_chat_template(m, add_generation_prompt=False) != toks[r].apply_chat_template(m)


def test_sdar_thinking_switch(toks):
    "Extra keywords reach the template: SDAR's (Qwen3) enable_thinking=False writes an empty think block."
    m = [{'role': 'user', 'content': 'hi'}]
    assert toks['sdar_chat'].apply_chat_template(m, enable_thinking=False).endswith('<think>\n\n</think>\n\n')


def test_tools_reach_template(toks):
    tools = [{'type': 'function', 'function': {'name': 'now', 'description': 'the time', 'parameters': {}}}]
    out = toks['sdar_chat'].apply_chat_template([{'role': 'user', 'content': 'time?'}], tools=tools)
    assert '"name": "now"' in out and '<tools>' in out


# ---------------------------------------------------------------------------------------------- bad folders and inputs
def damaged(tmp_path, src, edit=None, drop=(), write=None):
    "A copy of fixture `src`: tokenizer_config.json edited by `edit(cfg)`, `drop` files removed, `write` {file: text}."
    d = tmp_path / src
    shutil.copytree(FIX / src, d)
    if edit is not None:
        cfg = json.loads((d / 'tokenizer_config.json').read_text(encoding='utf-8'))
        edit(cfg)
        (d / 'tokenizer_config.json').write_text(json.dumps(cfg), encoding='utf-8')
    for f in drop: (d / f).unlink()
    for f, text in (write or {}).items(): (d / f).write_text(text, encoding='utf-8')
    return d


def set_(**kw): return lambda c: c.update(kw)


def without(key): return lambda c: c.pop(key)


BAD = {
    'no folder': (lambda t: t / 'nowhere', 'is not a folder'),
    'no tokenizer.json': (lambda t: damaged(t, 'sdar_chat', drop=['tokenizer.json']), 'tokenizer.json not found'),
    'no vocab.json either': (lambda t: damaged(t, 'dream_instruct', drop=['vocab.json']), 'tokenizer.json not found'),
    'vocab.json of an unknown class': (lambda t: damaged(t, 'dream_instruct', set_(tokenizer_class='GPT2Tokenizer')),
                                       "tokenizer_class 'GPT2Tokenizer' is not one whose vocab.json"),
    'no merges.txt': (lambda t: damaged(t, 'dream_instruct', drop=['merges.txt']), 'merges.txt not found'),
    'bad merges line': (lambda t: damaged(t, 'dream_instruct', write={'merges.txt': '#version: 0.2\na b c\n'}),
                        'merges.txt: line 2 is not a merge of two tokens'),
    'vocab.json not ids': (lambda t: damaged(t, 'dream_instruct', write={'vocab.json': '{"a": "x"}'}),
                           "vocab.json: every value must be a token id"),
    'tokenizer.json broken': (lambda t: damaged(t, 'sdar_chat', write={'tokenizer.json': '{"model": 3}'}),
                              'tokenizer.json is not a tokenizers file'),
    'malformed tokenizer_config.json': (lambda t: damaged(t, 'llada_instruct',
                                                          write={'tokenizer_config.json': '{"a": '}),
                                        'tokenizer_config.json is not valid JSON'),
    'tokenizer_config.json not an object': (lambda t: damaged(t, 'llada_instruct',
                                                              write={'tokenizer_config.json': '[]'}),
                                            'tokenizer_config.json: expected a JSON object'),
    'malformed config.json': (lambda t: damaged(t, 'llada_instruct', write={'config.json': 'nan'}),
                              'config.json is not valid JSON'),
    'malformed generation_config.json': (lambda t: damaged(t, 'sdar_chat', write={'generation_config.json': '{'}),
                                         'generation_config.json is not valid JSON'),
    'bad eos_token_id': (lambda t: damaged(t, 'sdar_chat', write={'generation_config.json': '{"eos_token_id": "x"}'}),
                         'generation_config.json: eos_token_id must be a token id'),
    'mask token not in vocab': (lambda t: damaged(t, 'sdar_chat', set_(mask_token='<|nope|>')),
                                "tokenizer_config.json: mask_token: '<|nope|>' is not in the tokenizer's vocabulary"),
    'eos token not in vocab': (lambda t: damaged(t, 'llada_instruct', set_(eos_token={'content': '<|eos|>'})),
                               "tokenizer_config.json: eos_token: '<|eos|>' is not in"),
    'special token not a string': (lambda t: damaged(t, 'llada_instruct', set_(bos_token=3)),
                                   'tokenizer_config.json: bos_token must be a string'),
    'mask disagrees with config.json': (lambda t: damaged(t, 'dream_instruct', set_(mask_token='<|endoftext|>')),
                                        'config.json: mask_token_id is 151666'),
    'config.json mask id not a token': (lambda t: damaged(t, 'llada_instruct',
                                                          write={'config.json': '{"mask_token_id": 5000}'}),
                                        'config.json: mask_token_id=5000 is not a token id'),
    'added token at another id': (lambda t: damaged(t, 'sdar_chat', lambda c: c['added_tokens_decoder'].update(
        {'151700': c['added_tokens_decoder'].pop('151669')})), "added_tokens_decoder['151700'] is '<|MASK|>'"),
    'added token key not an id': (lambda t: damaged(t, 'sdar_chat', lambda c: c['added_tokens_decoder'].update(
        {'x': {'content': 'y'}})), "added_tokens_decoder['x']: the key must be a token id"),
    'added token without content': (lambda t: damaged(t, 'sdar_chat', lambda c: c['added_tokens_decoder'].update(
        {'151669': {'special': True}})), "added_tokens_decoder['151669'] must be an object with a string 'content'"),
    'template not Jinja': (lambda t: damaged(t, 'sdar_chat', set_(chat_template='{% for %}')),
                           'tokenizer_config.json: chat_template is not a valid Jinja template'),
    'template of a wrong type': (lambda t: damaged(t, 'sdar_chat', set_(chat_template=[{'name': 'x'}])),
                                 'tokenizer_config.json: chat_template must be a string or a list'),
}


@pytest.mark.parametrize('case', list(BAD))
def test_bad_folder(tmp_path, case):
    make, msg = BAD[case]
    with pytest.raises(ValueError, match=None) as e: HFTokenizer.from_dir(make(tmp_path))
    assert msg in str(e.value), str(e.value)


def test_mask_override_and_fallbacks(tmp_path):
    assert HFTokenizer.from_dir(damaged(tmp_path, 'llada_instruct', drop=['config.json'])).mask_id == 126336  # by name
    t = HFTokenizer.from_dir(FIX / 'llada_instruct', mask_token='[gMASK]')
    assert t.mask_id == t.token_to_id('[gMASK]') == 126083
    with pytest.raises(ValueError, match=r"mask_token='<\|x\|>' is not in the vocabulary"):
        HFTokenizer.from_dir(FIX / 'llada_instruct', mask_token='<|x|>')


def test_no_template(tmp_path):
    base = HFTokenizer.from_dir(damaged(tmp_path, 'llada_instruct', without('chat_template')))
    assert base.template is None
    with pytest.raises(ValueError, match='has no chat template'):
        base.apply_chat_template([{'role': 'user', 'content': 'x'}])
    assert base.encode('hi') == HFTokenizer.from_dir(FIX / 'llada_instruct').encode('hi')


def test_template_from_jinja_file(tmp_path):
    "SDAR also ships chat_template.jinja (identical); it is used when tokenizer_config.json has no template."
    t = HFTokenizer.from_dir(damaged(tmp_path, 'sdar_chat', without('chat_template')))
    assert t.template.origin.endswith('chat_template.jinja')
    e = expected('sdar_chat')['conversations']['user']
    assert t.apply_chat_template(e['messages']) == e['rendered']


def test_named_templates(tmp_path):
    named = [{'name': 'default', 'template': 'D{{ messages[0].content }}'}, {'name': 'tool_use', 'template': 'T'}]
    t = HFTokenizer.from_dir(damaged(tmp_path, 'sdar_chat', set_(chat_template=named)))
    m = [{'role': 'user', 'content': 'x'}]
    assert t.apply_chat_template(m) == 'Dx'
    assert t.apply_chat_template(m, tools=[]) == 'T'
    t = HFTokenizer.from_dir(damaged(tmp_path / 'b', 'sdar_chat', set_(chat_template=named[1:])))
    with pytest.raises(ValueError, match="none named 'default'"): t.apply_chat_template(m)


def test_legacy_special_tokens_map(tmp_path):
    "No added_tokens_decoder: special_tokens_map.json is read and unknown additional tokens added (SDAR's <MASK>)."
    t = HFTokenizer.from_dir(damaged(tmp_path, 'sdar_chat', without('added_tokens_decoder')))
    assert t.token_to_id('<MASK>') == 151670 and t.mask_id == 151669
    assert '<MASK>' in t.special_tokens_map['additional_special_tokens']


def test_bad_messages(toks):
    tok = toks['sdar_chat']
    with pytest.raises(ValueError, match='non-empty list'): tok.apply_chat_template([])
    with pytest.raises(ValueError, match=r"messages\[1\] must be a dict"):
        tok.apply_chat_template([{'role': 'user', 'content': 'a'}, 'b'])
    with pytest.raises(ValueError, match='rejected the conversation'):
        ChatTemplate("{{ raise_exception('no system turns') }}").render([{'role': 'system', 'content': 'x'}])


def test_template_environment():
    "transformers' environment: tojson without HTML escaping, strftime_now, loop controls, generation tag, tools=None."
    t = ChatTemplate("{% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}"
                     "{% generation %}{{ m | tojson }}{% endgeneration %}{% endfor %}"
                     "|{{ strftime_now('%Y') | length }}|{{ bos_token is defined }}|{{ tools }}")
    assert t.render([{'role': 'user', 'content': '<é>'}, {'role': 'user', 'content': 'no'}]) == \
        '{"role": "user", "content": "<é>"}|4|False|None'
    with pytest.raises(ValueError, match='rejected'):                # the sandbox refuses attribute tricks
        ChatTemplate("{{ messages.__class__.__mro__ }}").render([{'role': 'user', 'content': 'x'}])


def test_transformers_never_imported():
    code = "import sys, mmdiff.chat; from mmdiff.chat import HFTokenizer; assert 'transformers' not in sys.modules"
    subprocess.run([sys.executable, '-c', code], check=True)


# ------------------------------------------------------------------------------------------------------- generate_text
def tiny(tok, attention=None, max_len=64):
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=tok.vocab_size, max_len=max_len, d_model=32, n_layer=1, n_head=4, n_modalities=0)
    return Denoiser(cfg, attention).eval()


def push(model, token_id, by=100.):
    "An output-layer bias that makes `token_id` the prediction everywhere."
    model.head.bias = torch.nn.Parameter(torch.zeros(model.cfg.vocab_size))
    model.head.bias.data[token_id] = by
    return model


PROMPTS = ['What is the capital of France?', 'Hi', [{'role': 'system', 'content': 'Be brief.'},
                                                    {'role': 'user', 'content': 'Hi'}], 'Hi']


class Spy:
    "Stands in for a sampler: records its calls and answers each row with `answer(row prompt)`."
    def __init__(self, answer): self.calls, self.answer = [], answer
    def __call__(self, model, prompt, gen_length, **kw):
        self.calls.append(dict(kw, prompt=prompt.clone(), gen_length=gen_length))
        rows = [self.answer(p.tolist())[:gen_length] for p in prompt]
        rows = [r + [0] * (gen_length - len(r)) for r in rows]
        return torch.cat([prompt, torch.tensor(rows, dtype=prompt.dtype)], 1)


def test_grouping_order_and_arguments(toks, monkeypatch):
    tok = toks['llada_instruct']
    spy = Spy(lambda p: tok.encode(f'len {len(p)}') + [tok.eot_id] + tok.encode(' junk'))
    monkeypatch.setattr(chat, 'generate', spy)
    out = generate_text(tiny(tok), tok, PROMPTS, gen_length=16, steps=8, block_length=8, temperature=0.5, threshold=0.9,
                        remasking='random')
    lens = [len(ids) for ids in encode_prompts(tok, PROMPTS)]
    assert out == [f'len {n}' for n in lens]                          # in the order of the prompts
    assert sorted(c['prompt'].shape for c in spy.calls) == sorted((lens.count(n), n) for n in set(lens))
    kw = spy.calls[0]
    assert (kw['steps'], kw['block_length'], kw['temperature'], kw['threshold'], kw['mask_id'], kw['remasking']) == \
        (8, 8, 0.5, 0.9, 126336, 'random')
    assert 'cache' not in kw                                           # passed on only when given
    generate_text(tiny(tok), tok, 'Hi', gen_length=16, block_length=8, cache='dual')
    assert spy.calls[-1]['cache'] == 'dual'


def test_answer_cut_and_padding_rows(toks, monkeypatch):
    "The answer ends at the first stop id (EOS too); ids past the tokenizer's vocabulary are dropped, not decoded."
    tok = toks['sdar_chat']
    monkeypatch.setattr(chat, 'generate', Spy(lambda p: tok.encode('Paris') + [tok.vocab_size + 3] + tok.encode('.')
                                              + [tok.eos_id] + tok.encode(' more')))
    assert generate_text(tiny(tok, max_len=80), tok, 'Capital?', gen_length=16, block_length=16) == ['Paris.']
    assert cut_at_stop([1, 2, 9, 3], (9,)) == [1, 2]
    assert cut_at_stop([1, 2], (9,)) == [1, 2]


def test_block_model_arguments(toks, monkeypatch):
    tok = toks['sdar_chat']
    spy = Spy(lambda p: tok.encode('ok') + [tok.eot_id])
    monkeypatch.setattr(chat, 'generate_block', spy)
    assert generate_text(tiny(tok, BlockDiff(4)), tok, ['Hi', 'Hello there'], gen_length=32, steps=16) == ['ok', 'ok']
    kw = spy.calls[0]
    assert (kw['steps_per_block'], kw['eos_id'], kw['mask_id'], kw['gen_length']) == (2, tok.eot_id, tok.mask_id, 32)
    generate_text(tiny(tok, BlockDiff(4)), tok, 'Hi', gen_length=32, steps_per_block=3, use_cache=False)
    assert spy.calls[-1]['steps_per_block'] == 3 and spy.calls[-1]['use_cache'] is False
    generate_text(tiny(tok, BlockDiff(4)), tok, 'Hi', chat=False, gen_length=32)
    assert spy.calls[-1]['eos_id'] == tok.eos_id                       # a plain-text prompt ends at EOS


def test_tiny_denoiser_returns_strings(toks):
    tok = toks['llada_instruct']
    out = generate_text(tiny(tok), tok, PROMPTS, gen_length=8, steps=2, block_length=8)
    assert len(out) == len(PROMPTS) and all(isinstance(a, str) for a in out)
    assert generate_text(push(tiny(tok), tok.eot_id), tok, PROMPTS, gen_length=8, steps=2, block_length=8) == [''] * 4


class Scripted(torch.nn.Module):
    "A Denoiser steered to write `script` right after the prompt."
    def __init__(self, net, script, gen_length):
        super().__init__()
        self.net, self.script, self.gen_length = net, script, gen_length
    @property
    def cfg(self): return self.net.cfg
    def forward(self, x, **kw):
        logits = self.net(x, **kw)
        P = x.shape[1] - self.gen_length
        for j, t in enumerate(self.script): logits[:, P + j, t] += 100.
        return logits


@pytest.mark.parametrize('release', ['llada_instruct', 'dream_instruct'])
def test_tiny_denoiser_stops_at_end_of_turn(toks, release):
    tok = toks[release]
    script = tok.encode('The capital of France is Paris.') + [tok.eot_id] + tok.encode(' junk')
    net = Scripted(tiny(tok, max_len=80), script, 16)
    out = generate_text(net, tok, PROMPTS[:2], gen_length=16, steps=2, block_length=16)
    assert out == ['The capital of France is Paris.'] * 2


def test_block_denoiser_stops_early(toks):
    tok = toks['sdar_chat']
    net = push(tiny(tok, BlockDiff(4)), tok.eot_id)
    calls = []
    net.register_forward_hook(lambda m, i, o: calls.append(1))
    assert generate_text(net, tok, ['Hi'], gen_length=32, steps=32) == ['']
    assert len(calls) <= 1 + 4 + 1                                     # prefill, one block's steps, no second block
    assert isinstance(generate_text(tiny(tok, BlockDiff(4)), tok, 'Hi', gen_length=8, steps=8)[0], str)


def test_generate_text_errors(toks, tmp_path):
    llada, sdar = toks['llada_instruct'], toks['sdar_chat']
    with pytest.raises(ValueError, match=r"prompt 1 has \d+ tokens; with gen_length=16 .* context of 64 tokens"):
        generate_text(tiny(llada), llada, ['Hi', 'word ' * 60], gen_length=16)
    base = HFTokenizer.from_dir(damaged(tmp_path, 'llada_instruct', without('chat_template')))
    with pytest.raises(ValueError, match='has no chat template'): generate_text(tiny(base), base, ['hi'], gen_length=8)
    assert isinstance(generate_text(tiny(base), base, ['The capital'], chat=False, gen_length=8, steps=2,
                                    block_length=8)[0], str)
    with pytest.raises(ValueError, match='with chat=False every prompt must be a string'):
        generate_text(tiny(base), base, [[{'role': 'user', 'content': 'x'}]], chat=False, gen_length=8)
    with pytest.raises(ValueError, match=r'prompts\[0\] must be a string'):
        generate_text(tiny(llada), llada, [3], gen_length=8)
    with pytest.raises(ValueError, match='cache= is for'):
        generate_text(tiny(sdar, BlockDiff(4)), sdar, ['hi'], gen_length=8, cache='prefix')
    with pytest.raises(ValueError, match='prompt 0 encodes to no tokens'):
        generate_text(tiny(base), base, [''], chat=False, gen_length=8)
    nomask = HFTokenizer.from_dir(FIX / 'llada_instruct')
    nomask.mask_id = None
    with pytest.raises(ValueError, match='names no mask token'):
        generate_text(tiny(llada), nomask, ['hi'], gen_length=8)


def test_with_approximate_cache(toks):
    "cache= reaches mmdiff.sample.generate (Fast-dLLM's PrefixCache / DualCache, where this mmdiff has them)."
    import mmdiff.sample as sample
    if not hasattr(sample, 'PrefixCache'): pytest.skip('mmdiff.sample has no approximate cache yet')
    tok = toks['llada_instruct']
    for cache in (sample.PrefixCache(), sample.DualCache()):
        out = generate_text(push(tiny(tok), tok.eot_id), tok, PROMPTS[:2], gen_length=16, steps=4, block_length=8,
                            cache=cache)
        assert out == ['', '']


def test_added_tokens_registered_from_config(tmp_path):
    "A tokenizer.json holding the special tokens only in its BPE vocab still matches them whole (as transformers)."
    d = damaged(tmp_path, 'sdar_chat')
    j = json.loads((d / 'tokenizer.json').read_text(encoding='utf-8'))
    j['added_tokens'] = []
    (d / 'tokenizer.json').write_text(json.dumps(j), encoding='utf-8')
    tok, c = HFTokenizer.from_dir(d), expected('sdar_chat')['conversations']['multi_turn']
    assert tok.encode_chat(c['messages']) == c['input_ids_no_special']
    assert tok.decode(c['input_ids'], skip_special_tokens=True) == c['decoded_skip_special']


def test_additional_special_tokens_not_a_list(tmp_path):
    with pytest.raises(ValueError, match='tokenizer_config.json: additional_special_tokens must be a list'):
        HFTokenizer.from_dir(damaged(tmp_path, 'sdar_chat', set_(additional_special_tokens='<|im_end|>')))
