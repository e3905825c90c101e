"""`mmdiff.sources.prepare_text`: the token files are exactly the documents' tokens, each followed by <|eos|>, split
chunk by chunk into train / val, whatever the batching of the tokenizer calls."""
import json
import numpy as np
import pytest
from mmdiff.sources import check_corpus, corpus_vocab, prepare_text


@pytest.mark.parametrize('batch_bytes', [1, 50, 1 << 18])
def test_token_files_are_the_documents_with_eos(tmp_path, batch_bytes):
    docs = [f"record {i}: the cat sat on mat number {i * 7 % 13}." for i in range(300)]
    (tmp_path/'a.jsonl').write_text(''.join(json.dumps({'text': d}) + '\n' for d in docs))
    (tmp_path/'b.txt').write_text('line one\nline two\n\nline four\n')
    (tmp_path/'empty.txt').write_text('')
    corpus = check_corpus([tmp_path/'a.jsonl', tmp_path/'b.txt', tmp_path/'empty.txt'])
    v = corpus_vocab(corpus, n_text=300)
    prep = prepare_text(corpus, v, tmp_path/f'prep{batch_bytes}', chunk=64, val_every=5, batch_bytes=batch_bytes, progress=False)
    stream = [t for d in docs for t in v.encode(d) + [v.eos_id]]
    stream += [t for line in ('line one\n', 'line two\n', '\n', 'line four\n') for t in v.encode(line)] + [v.eos_id]
    stream += [v.eos_id]                                                    # the empty file is an empty document
    chunks = [stream[i:i + 64] for i in range(0, len(stream), 64)]
    assert np.asarray(prep.tokens('train')).tolist() == [t for k, c in enumerate(chunks) if k % 5 != 4 for t in c]
    assert np.asarray(prep.tokens('val')).tolist() == [t for k, c in enumerate(chunks) if k % 5 == 4 for t in c]
    assert prep.meta['n_docs'] == 301
