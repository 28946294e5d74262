from collections import Counter

import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score

from domix.regroup.report import contingency, ctfidf, nmi, purity


def test_purity_and_nmi_on_planted_clusterings():
    truth = np.repeat(np.arange(4), 50)
    relabelled = (truth + 1) % 4  # the same partition under other names
    c = contingency(relabelled, truth, 4, 4)
    assert purity(c) == 1.0 and nmi(c) == pytest.approx(1.0)
    merged = np.minimum(truth, 2)  # domains 2 and 3 share one cluster
    c = contingency(merged, truth, 3, 4)
    assert purity(c) == pytest.approx(150 / 200)
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.integers(0, 6, 300), rng.integers(0, 4, 300)
        assert nmi(contingency(a, b, 6, 4)) == pytest.approx(normalized_mutual_info_score(b, a))
    assert nmi(contingency(rng.integers(0, 5, 20000), truth.repeat(100), 5, 4)) < 0.01


def test_ctfidf_ranks_the_distinctive_terms_of_each_cluster():
    common = Counter({"data": 30})  # as frequent as the top terms, but in every cluster
    a = common + Counter({"goal": 30, "match": 20, "league": 5})
    b = common + Counter({"integral": 25, "prime": 20, "league": 1})
    top = ctfidf([a, b], top=2)
    assert [t for t, _ in top[0]] == ["goal", "match"]
    assert [t for t, _ in top[1]] == ["integral", "prime"]
    # the formula: tf * log(1 + A / f), A = average words per cluster, f = count over clusters
    A = (sum(a.values()) + sum(b.values())) / 2
    assert top[0][0][1] == pytest.approx(30 * np.log(1 + A / 30), abs=1e-3)
    assert dict(ctfidf([a, b], top=10)[0])["data"] == pytest.approx(
        30 * np.log(1 + A / 60), abs=1e-3
    )


def test_report_of_a_real_clustering(model_regroup, demo_corpus):
    rep = model_regroup.report
    clusters = rep["clusters"]
    assert sum(c["train_docs"] for c in clusters) == demo_corpus.manifest["docs_per_split"]["train"]
    assert sum(c["validation_docs"] for c in clusters) == rep["documents"]["validation"]
    assert sum(c["pbar"] for c in clusters) == pytest.approx(1.0, abs=1e-5)
    assert rep["size_unit"] == "tokens"  # the demo slice has a token store
    for c in clusters:
        assert sum(c["domains"].values()) == c["train_docs"]
        assert len(c["top_terms"]) == 8 and 1 <= len(c["examples"]) <= 3
    drama = next(c for c in clusters if c["top_domain"] == "drama")
    assert {"thou", "thy", "thee"} & set(drama["top_terms"])
    code = next(c for c in clusters if c["top_domain"] == "code")
    assert {"self", "def", "return"} & set(code["top_terms"])
    md = (model_regroup.path / "report.md").read_text()
    assert "purity" in md and "| c00 |" in md and "## c04" in md
