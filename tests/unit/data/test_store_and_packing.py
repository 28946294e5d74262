import numpy as np
import pytest

from domix.config import ConfigError
from domix.data.domains import resolve_domains
from domix.data.packed import pack
from domix.data.token_store import TokenStore
from domix.tokenizer import TokenizerConfig, load_tokenizer


def test_tokenizer_is_trained_on_the_corpus_cached_and_round_trips(demo_corpus, demo_tokenizer):
    again = TokenizerConfig().build(demo_corpus)
    assert again.fingerprint == demo_tokenizer.fingerprint  # cached by corpus fingerprint
    text = "def f(x):\n    return x ** 2  # café"
    assert demo_tokenizer.decode(demo_tokenizer.encode(text)) == text  # byte-level: lossless
    assert demo_tokenizer.backend.id_to_token(demo_tokenizer.eos_id) == "<|endoftext|>"


def test_tokenizer_file_and_errors(tmp_path, demo_tokenizer):
    path = tmp_path / "tok.json"
    demo_tokenizer.backend.save(str(path))
    assert load_tokenizer(path).fingerprint == demo_tokenizer.fingerprint
    with pytest.raises(ConfigError, match="does not exist"):
        TokenizerConfig(path=str(tmp_path / "nope")).build()


def test_token_store_matches_the_corpus(demo_corpus, demo_tokenizer, demo_store):
    assert demo_store.num_docs == demo_corpus.num_docs
    assert TokenStore.build(demo_corpus, demo_tokenizer).path == demo_store.path  # built once
    texts = demo_corpus.read(["text"]).column(0).to_pylist()
    for i in (0, 17, len(texts) - 1):
        assert demo_tokenizer.decode(demo_store.doc(i).tolist()) == texts[i]
    counts = demo_corpus.manifest["tokens"][demo_tokenizer.fingerprint[:16]]
    assert counts["total"] == int(demo_store.doc_lengths().sum())


def _doc_domains(corpus, domains):
    return domains.labels, np.asarray(corpus.read(["split"]).column(0).to_pylist())


def test_every_packed_sequence_comes_from_one_domain(demo_corpus, demo_store):
    domains = resolve_domains(demo_corpus, "original")
    packed = pack(demo_corpus, demo_store, domains, "train", context_length=64, seed=1)
    labels, split = _doc_domains(demo_corpus, domains)
    eos = demo_store.eos_id
    for d, _name in enumerate(packed.names):
        # the domain's stream holds exactly its training documents, each followed by EOS
        docs = np.flatnonzero((labels == d) & (split == "train"))
        stream = packed.tokens[packed.bounds[d] : packed.bounds[d + 1]]
        assert (
            len(stream)
            == sum(len(demo_store.doc(i)) + 1 for i in docs)
            == packed.tokens_per_domain[d]
        )
        assert (stream == eos).sum() == len(docs)
        own = set(np.concatenate([demo_store.doc(i) for i in docs]).tolist()) | {eos}
        seqs = packed.sequences(d)
        assert seqs.shape == (packed.num_sequences[d], 65)
        assert set(np.unique(seqs).tolist()) <= own
        # windows overlap by one token: targets continue where inputs stop
        assert np.array_equal(seqs[1:, 0], seqs[:-1, -1])
    again = pack(demo_corpus, demo_store, domains, "train", context_length=64, seed=1)
    assert again.path == packed.path
    other = pack(demo_corpus, demo_store, domains, "train", context_length=64, seed=2)
    assert not np.array_equal(other.tokens[:500], packed.tokens[:500])  # seeded document order


def test_eval_cap_and_tiling_of_tiny_domains(demo_corpus, demo_store):
    domains = resolve_domains(demo_corpus, "subdomain")
    packed = pack(
        demo_corpus, demo_store, domains, "validation", context_length=64, max_tokens_per_domain=256
    )
    lengths = np.diff(packed.bounds)
    assert lengths.max() <= 4 * 64 + 1
    present = packed.docs_per_domain > 0
    assert np.all(packed.num_sequences[present] >= 1)  # tiny domains are tiled to one sequence
    assert np.all(packed.num_sequences[~present] == 0)
    assert np.all(packed.split_tokens >= packed.tokens_per_domain)
    assert set(packed.meta["tiled_domains"]) <= {n for n, p in zip(packed.names, present) if p}


def test_domain_layers(demo_corpus):
    orig = resolve_domains(demo_corpus, "original")
    sub = resolve_domains(demo_corpus, "subdomain")
    assert orig.names == ("code", "dialogue", "drama", "math", "news")
    assert len(sub) > len(orig) and all("/" in n for n in sub.names)
    assert orig.fingerprint != sub.fingerprint
    with pytest.raises(Exception, match="unknown domain set"):
        resolve_domains(demo_corpus, "bogus")
