"""The built-in `instruct` corpus: prompt/response records in five tasks, made from the demo's packages."""

from domix.corpus import build_corpus

NEWS = "business, entertainment, politics, sports, tech"


def test_instruct_records_have_a_prompt_and_a_response_per_task(domix_cache):
    corpus = build_corpus("instruct", max_docs_per_domain=25, tokenize=False, progress=False)
    assert corpus.records and sorted(corpus.domains) == ["classify", "code", "headline", "math", "qa"]
    rows = corpus.read(["id", "prompt", "text", "domain", "subdomain"]).to_pylist()
    by = {d: [r for r in rows if r["domain"] == d] for d in corpus.domains}
    assert all(len(v) == 25 for v in by.values())
    assert all(r["prompt"].strip() and r["text"].strip() for r in rows)
    for r in by["classify"]:
        assert r["text"] == r["subdomain"] in {"business", "entertainment", "politics", "sports", "tech"}
        assert r["prompt"].endswith(f"Answer with one of: {NEWS}.")
    for r in by["headline"]:
        assert "\n" not in r["text"] and r["text"] not in r["prompt"]  # the title, not in the body
        assert r["prompt"].endswith("Write a headline for this news article.")
    for r in by["code"]:
        signature = r["text"].splitlines()[0]
        assert signature.lstrip().startswith(("def ", "async def ")) and signature in r["prompt"]
        assert 3 <= len(r["text"].splitlines()) <= 40
    assert all(r["prompt"].startswith("Solve this problem.") and "Answer:" in r["text"] for r in by["math"])
    assert all(r["subdomain"].count("/") == 1 for r in by["qa"])  # language/topic


def test_a_cached_built_in_corpus_built_by_other_source_code_is_reported(domix_cache, demo_corpus, monkeypatch):
    import warnings

    import pytest

    from domix.corpus import builtin

    assert demo_corpus.manifest["sources"]["code"] == builtin.source_fingerprint("demo")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        builtin.build_corpus("demo", max_docs_per_domain=120, progress=False)  # same code: silent
    monkeypatch.setattr(builtin, "source_fingerprint", lambda name: "other")
    with pytest.warns(UserWarning, match=r"other source code .*`domix corpus build demo --max-docs-per-domain 120 --force"):
        again = builtin.build_corpus("demo", max_docs_per_domain=120, progress=False)
    assert again.fingerprint == demo_corpus.fingerprint  # reported, not rebuilt
