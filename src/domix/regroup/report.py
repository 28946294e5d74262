"""The cluster report: what each regrouped domain holds, and how it relates to the original labels.

Per cluster: training / validation / test documents, tokens (from the corpus's token store when
one exists, else characters), pbar (share of validation documents, the target R&B's Balance
uses), top terms by class-based TF-IDF, the original domains it draws from, and the training
documents nearest its centroid as examples. Overall: purity and NMI of the clusters against the
original domain labels, on the training documents (the ones k-means clustered).

c-TF-IDF (as in BERTopic; domix's own code): all sampled documents of a cluster form one class
document; weight(t, c) = tf(t, c) * log(1 + A / f(t)), with tf(t, c) the count of term t in
cluster c, f(t) its count over all clusters, A the average number of words per cluster.

    domix regroup show demo k8      # prints report.md
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np
import pyarrow.compute as pc

from .. import io
from ..corpus.store import Corpus
from .engine import SPLIT_CODE, Assignment

WORD_RE = re.compile(r"[^\W\d_][^\W_]{2,}")
_STOP = (
    "the and for that with this from are was were have has had not but you your our they their "
    "them its his her she him who what which when where why how all any can could would should "
    "will shall may might must been being into onto than then there these those also such only "
    "over under more most some very just about after before while each other out off per via one "
    "two three said says did does doing done get got let yes use used using upon"
)
STOPWORDS = frozenset(_STOP.split())


def contingency(cluster_N: np.ndarray, label_N: np.ndarray, k: int, m: int) -> np.ndarray:
    """counts_KM[c, d] = documents in cluster c with original label d."""
    return np.bincount(cluster_N * m + label_N, minlength=k * m).reshape(k, m)


def purity(counts_KM: np.ndarray) -> float:
    """Share of documents whose cluster's majority label is their own label."""
    return float(counts_KM.max(1).sum() / max(counts_KM.sum(), 1))


def nmi(counts_KM: np.ndarray) -> float:
    """Normalised mutual information, arithmetic-mean normalisation (sklearn's default)."""
    n = counts_KM.sum()
    if n == 0:
        return 0.0
    p_km = counts_KM / n
    p_k, p_m = p_km.sum(1), p_km.sum(0)
    nz = p_km > 0
    mi = float((p_km[nz] * np.log(p_km[nz] / np.outer(p_k, p_m)[nz])).sum())
    h_k = -float((p_k[p_k > 0] * np.log(p_k[p_k > 0])).sum())
    h_m = -float((p_m[p_m > 0] * np.log(p_m[p_m > 0])).sum())
    if h_k == 0 or h_m == 0:
        return 1.0 if h_k == h_m else 0.0
    return max(0.0, mi / ((h_k + h_m) / 2))


def words(text: str) -> list[str]:
    return [w for w in WORD_RE.findall(text.lower()) if w not in STOPWORDS]


def ctfidf(term_counts: list[Counter[str]], top: int = 8) -> list[list[tuple[str, float]]]:
    """Top ``top`` terms per cluster by c-TF-IDF (one Counter of term counts per cluster)."""
    total: Counter[str] = Counter()
    for c in term_counts:
        total.update(c)
    avg_words = sum(total.values()) / max(len(term_counts), 1)
    out = []
    for c in term_counts:
        scored = [(t, n * np.log(1.0 + avg_words / total[t])) for t, n in c.items()]
        scored.sort(key=lambda x: (-x[1], x[0]))
        out.append([(t, round(float(s), 3)) for t, s in scored[:top]])
    return out


def token_lengths(corpus: Corpus) -> tuple[np.ndarray | None, str]:
    """Tokens per document from a token store of this corpus, if one was built."""
    from ..data.token_store import TokenStore

    for meta in sorted((io.cache_dir() / "tokens").glob(f"{corpus.fingerprint[:16]}-*/meta.json")):
        store = TokenStore(meta.parent)
        if store.corpus_fingerprint == corpus.fingerprint and store.num_docs == corpus.num_docs:
            return np.asarray(store.doc_lengths(), dtype=np.int64), "tokens"
    return None, "chars"


def label_codes(corpus: Corpus, column: str) -> tuple[list[str], np.ndarray]:
    """(sorted distinct values, int64 code per row) of a string column, streamed."""
    index: dict[str, int] = {}
    parts = []
    for batch in corpus.iter_batches([column], 65536):
        enc = pc.dictionary_encode(batch.column(0))
        local = [index.setdefault(str(v), len(index)) for v in enc.dictionary.to_pylist()]
        parts.append(np.asarray(local, dtype=np.int64)[enc.indices.to_numpy()])
    names = sorted(index)
    remap = np.empty(len(index), dtype=np.int64)
    remap[[index[n] for n in names]] = np.arange(len(names))
    return names, remap[np.concatenate(parts)] if parts else np.zeros(0, np.int64)


def scan_texts(
    corpus: Corpus, rows: np.ndarray, lengths: bool, max_chars: int = 4000
) -> tuple[dict[int, str], np.ndarray | None]:
    """Texts of the sorted corpus ``rows`` and, if asked, every document's length in characters,
    in one streaming pass (only the wanted texts are kept)."""
    rows, out, start, lens = np.asarray(rows, dtype=np.int64), {}, 0, []
    for batch in corpus.iter_batches(["text"], 8192):
        lo, hi = np.searchsorted(rows, [start, start + batch.num_rows])
        col = batch.column(0)
        for r in rows[lo:hi]:
            out[int(r)] = col[int(r - start)].as_py()[:max_chars]
        if lengths:
            lens.append(pc.utf8_length(col).to_numpy().astype(np.int64))
        start += batch.num_rows
    return out, (np.concatenate(lens) if lengths else None)


def build_report(
    corpus: Corpus,
    asg: Assignment,
    names: list[str],
    seed: int,
    docs_per_cluster: int = 300,
    examples: int = 3,
) -> dict[str, Any]:
    k = len(names)
    domains, dom_N = label_codes(corpus, "domain")
    train = asg.split_N == SPLIT_CODE["train"]
    cl = asg.cluster_N.astype(np.int64)
    counts_KM = contingency(cl[train], dom_N[train], k, len(domains))
    per_split = {s: np.bincount(cl[asg.split_N == c], minlength=k) for s, c in SPLIT_CODE.items()}
    val = per_split["validation"].astype(np.float64)
    pbar = val / val.sum() if val.sum() > 0 else np.full(k, 1.0 / k)
    lengths, unit = token_lengths(corpus)

    # texts: a seeded sample per cluster for the terms, the nearest training docs as examples
    rng = np.random.default_rng(seed)
    train_rows = np.flatnonzero(train)
    by_dist = train_rows[np.lexsort((asg.distance_N[train_rows], cl[train_rows]))]
    starts = np.searchsorted(cl[by_dist], np.arange(k + 1))
    example_rows = [by_dist[starts[c] : min(starts[c] + examples, starts[c + 1])] for c in range(k)]
    term_rows = []
    for c in range(k):
        members = by_dist[starts[c] : starts[c + 1]]
        take = min(docs_per_cluster, len(members))
        term_rows.append(np.sort(rng.choice(members, size=take, replace=False)))
    wanted = np.unique(np.concatenate([*term_rows, *example_rows, np.zeros(0, np.int64)]))
    texts, char_lengths = scan_texts(corpus, wanted, lengths=lengths is None)
    lengths = char_lengths if lengths is None else lengths
    size_K = np.bincount(cl[train], weights=lengths[train], minlength=k).astype(np.int64)
    terms = ctfidf([Counter(w for r in rows for w in words(texts[int(r)])) for rows in term_rows])

    clusters = []
    for c, name in enumerate(names):
        comp = {domains[d]: int(n) for d, n in enumerate(counts_KM[c]) if n > 0}
        comp = dict(sorted(comp.items(), key=lambda kv: -kv[1]))
        n_train = int(per_split["train"][c])
        top = next(iter(comp), None)
        clusters.append(
            {
                "name": name,
                "train_docs": n_train,
                "validation_docs": int(per_split["validation"][c]),
                "test_docs": int(per_split["test"][c]),
                unit: int(size_K[c]),
                "pbar": round(float(pbar[c]), 6),
                "top_domain": top,
                "top_domain_share": round(comp[top] / n_train, 4) if top else None,
                "domains": comp,
                "top_terms": [t for t, _ in terms[c]],
                "mean_distance": round(float(asg.distance_N[cl == c].mean()), 4)
                if (cl == c).any()
                else None,
                "examples": [
                    {
                        "id": asg.ids[int(r)].as_py(),
                        "domain": domains[dom_N[r]],
                        "distance": round(float(asg.distance_N[r]), 4),
                        "snippet": " ".join(texts[int(r)][:240].split()),
                    }
                    for r in example_rows[c]
                ],
            }
        )
    return {
        "corpus": corpus.name,
        "k": k,
        "documents": {s: int(v.sum()) for s, v in per_split.items()},
        "size_unit": unit,
        "purity": round(purity(counts_KM), 5),
        "nmi": round(nmi(counts_KM), 5),
        "original_domains": domains,
        "pbar": [round(float(p), 6) for p in pbar],
        "empty_train_clusters": [n for n, v in zip(names, per_split["train"]) if v == 0],
        "clusters": clusters,
        "_domain_codes": dom_N,  # for the map; dropped before writing
    }


def render_markdown(report: dict[str, Any], title: str, lines: list[str]) -> str:
    unit = report["size_unit"]
    out = [f"# {title}", "", *lines, ""]
    out.append(
        f"Against the original domains ({len(report['original_domains'])}), on the training "
        f"documents: **purity {report['purity']:.3f}**, **NMI {report['nmi']:.3f}**."
    )
    out += ["", f"| cluster | train docs | {unit} | pbar | top domain | top terms |"]
    out.append("|---|---:|---:|---:|---|---|")
    for c in report["clusters"]:
        share = f"{c['top_domain']} ({c['top_domain_share']:.0%})" if c["top_domain"] else "-"
        out.append(
            f"| {c['name']} | {c['train_docs']:,} | {c[unit]:,} | {c['pbar']:.3f} | {share} | "
            f"{', '.join(c['top_terms'][:6])} |"
        )
    sel = report.get("k_selection")
    if sel:
        keys = [key for key in sel["curve"][0] if key != "k"]
        out += ["", f"## Choosing k ({sel['method']}: best {sel['key']} at k = {sel['best']})", ""]
        out += ["| k | " + " | ".join(keys) + " |", "|---:|" + "---:|" * len(keys)]
        out += [
            f"| {r['k']} | " + " | ".join(str(r[key]) for key in keys) + " |" for r in sel["curve"]
        ]
    for c in report["clusters"]:
        comp = ", ".join(
            f"{d} {n / max(c['train_docs'], 1):.0%}" for d, n in list(c["domains"].items())[:5]
        )
        out += ["", f"## {c['name']}", "", f"- draws from: {comp or '-'}"]
        out.append(f"- top terms: {', '.join(c['top_terms'])}")
        for ex in c["examples"]:
            out.append(f"- `{ex['id']}` ({ex['domain']}, d={ex['distance']:.3f}): {ex['snippet']}")
    return "\n".join(out) + "\n"
