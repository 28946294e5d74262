"""Domains are a layer over the corpus: a label per document, never a rewrite of the data.

A domain set is named by a spec string:

- ``original``: the corpus's human ``domain`` labels;
- ``subdomain``: ``<domain>/<subdomain>`` labels (the natural finer split);
- ``random:<m>``: m domains by a hash of the document id (no meaning: for overhead benchmarks at any m);
- ``regrouped:<name>``: clusters from ``domix regroup`` (read from the artifact, ``cluster_store.py``).

    ds = resolve_domains(corpus, "original")
    ds.names        # ('code', 'dialogue', ...)
    ds.labels       # int32 per corpus row, -1 where a document belongs to no domain
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import io
from ..corpus.document import CorpusError
from ..corpus.split import id_unit
from ..corpus.store import Corpus
from ..registry import Registry
from .cluster_store import load_clusters


@dataclass(frozen=True, eq=False)
class DomainSet:
    spec: str
    names: tuple[str, ...]
    labels: np.ndarray  # int32 [num_docs], -1 = in no domain
    fingerprint: str

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def from_labels(cls, spec: str, corpus_fingerprint: str, values: list[str | None]) -> DomainSet:
        names = tuple(sorted({v for v in values if v is not None}))
        index = {n: i for i, n in enumerate(names)}
        labels = np.array([index[v] if v is not None else -1 for v in values], dtype=np.int32)
        return cls(
            spec, names, labels, io.fingerprint(spec, corpus_fingerprint, *names, labels.tobytes())
        )

    def keep(self, mask: np.ndarray) -> DomainSet:
        """The same layer without the domains where ``mask`` is False (their documents get -1)."""
        mask = np.asarray(mask, dtype=bool)
        new_index = np.where(mask, np.cumsum(mask) - 1, -1).astype(np.int32)
        labels = np.where(self.labels >= 0, new_index[np.maximum(self.labels, 0)], -1).astype(
            np.int32
        )
        names = tuple(n for n, k in zip(self.names, mask) if k)
        return DomainSet(
            self.spec, names, labels, io.fingerprint(self.fingerprint, "keep", mask.tobytes())
        )


DomainResolver = Callable[[Corpus, str], DomainSet]
DOMAIN_SETS: Registry[DomainResolver] = Registry("domain set")


def resolve_domains(corpus: Corpus, spec: str) -> DomainSet:
    kind, _, arg = spec.partition(":")
    try:
        resolver = DOMAIN_SETS.get(kind)
    except KeyError as e:
        raise CorpusError(
            f"unknown domain set '{spec}': use original, subdomain or regrouped:<name>"
        ) from e
    return resolver(corpus, arg)


@DOMAIN_SETS.register("original")
def _original(corpus: Corpus, arg: str) -> DomainSet:
    return DomainSet.from_labels(
        "original", corpus.fingerprint, corpus.read(["domain"]).column(0).to_pylist()
    )


@DOMAIN_SETS.register("subdomain")
def _subdomain(corpus: Corpus, arg: str) -> DomainSet:
    t = corpus.read(["domain", "subdomain"])
    values = [f"{d}/{s or '-'}" for d, s in zip(t.column(0).to_pylist(), t.column(1).to_pylist())]
    return DomainSet.from_labels("subdomain", corpus.fingerprint, values)


@DOMAIN_SETS.register("random")
def _random(corpus: Corpus, arg: str) -> DomainSet:
    if not arg.isdigit() or int(arg) < 1:
        raise CorpusError(f"random domains need a count: random:<m>, got 'random:{arg}'")
    m = int(arg)
    ids = corpus.read(["id"]).column(0).to_pylist()
    width = len(str(m - 1))
    values = [f"r{int(id_unit(i, 'random-domains') * m):0{width}d}" for i in ids]
    return DomainSet.from_labels(f"random:{m}", corpus.fingerprint, values)


@DOMAIN_SETS.register("regrouped")
def _regrouped(corpus: Corpus, name: str) -> DomainSet:
    """Each document's domain is its cluster in the artifact ``<cache>/regroup/<corpus fp[:16]>/<name>/``;
    a missing name is an error listing the available ones, an artifact of another corpus is refused.

        domix regroup run demo --k 8 --name k8
        domix train -c configs/tiny.yaml --set data.domains=regrouped:k8
    """
    if not name:
        raise CorpusError("regrouped domains need a name: data.domains=regrouped:<name>")
    meta, labels = load_clusters(corpus, name)
    spec = f"regrouped:{name}"
    names = tuple(meta["cluster_names"])
    # from the clusters alone, not the artifact's file: its distances differ in the last bits from
    # CPU to CPU, and the same clusters (or an imported copy, ``domix regroup import``) are the same data
    return DomainSet(spec, names, labels, io.fingerprint(spec, corpus.fingerprint, *names, labels.tobytes()))
