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


def test_random_domains_and_keep(demo_corpus):
    r = resolve_domains(demo_corpus, "random:7")
    assert len(r) == 7 and np.bincount(r.labels).min() > 40
    assert np.array_equal(r.labels, resolve_domains(demo_corpus, "random:7").labels)
    kept = r.keep(np.array([True, False, True, True, False, True, True]))
    assert len(kept) == 5 and kept.names == (r.names[0], *r.names[2:4], *r.names[5:])
    assert np.all((kept.labels == -1) == np.isin(r.labels, [1, 4]))
    assert np.array_equal(np.array(kept.names)[kept.labels[kept.labels >= 0]], np.array(r.names)[r.labels[kept.labels >= 0]])
    with pytest.raises(Exception, match="random:<m>"):
        resolve_domains(demo_corpus, "random:x")


def test_domains_absent_from_a_split_pack_to_empty_streams(demo_corpus, demo_store):
    """A domain with no document in the split (first, middle or last) gets an empty stream."""
    from domix.data.domains import DomainSet

    orig = resolve_domains(demo_corpus, "original")
    split = demo_corpus.read(["split"]).column(0).to_numpy(zero_copy_only=False)
    labels = orig.labels.copy()
    val = split == "validation"
    labels[val] = np.where(np.isin(labels[val], [1, 2]), labels[val], 1)
    # validation now holds only domains 1 and 2; domains 0, 3 and 4 are empty there
    domains = DomainSet("test-absent", orig.names, labels, "absent-" + orig.fingerprint)
    packed = pack(demo_corpus, demo_store, domains, "validation", context_length=32)
    assert np.all(packed.docs_per_domain[[0, 3, 4]] == 0) and np.all(packed.docs_per_domain[1:3] > 0)
    assert np.all(packed.num_sequences[[0, 3, 4]] == 0) and np.all(packed.num_sequences[1:3] > 0)
    assert packed.tokens_per_domain[1] == sum(
        len(demo_store.doc(i)) + 1 for i in np.flatnonzero((labels == 1) & (split == "validation"))
    )
