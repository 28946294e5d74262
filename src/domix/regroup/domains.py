"""The ``regrouped:<name>`` domain set: clusters from ``domix regroup`` as a layer over the corpus.

Registered in ``domix.data.domains.DOMAIN_SETS``; the corpus is never rewritten. Each document's
domain is its cluster in the artifact ``<cache>/regroup/<corpus fp[:16]>/<name>/``; a missing name
is an error listing the available ones, an artifact of another corpus is refused.

    domix regroup run demo --k 8 --name k8
    domix train -c configs/tiny.yaml --set data.domains=regrouped:k8
"""

from __future__ import annotations

from ..corpus.document import CorpusError
from ..corpus.store import Corpus
from ..data.domains import DOMAIN_SETS, DomainSet
from ..io import fingerprint
from .artifact import load_clusters


@DOMAIN_SETS.register("regrouped")
def regrouped_domains(corpus: Corpus, name: str) -> DomainSet:
    if not name:
        raise CorpusError("regrouped domains need a name: data.domains=regrouped:<name>")
    meta, labels = load_clusters(corpus, name)
    spec = f"regrouped:{name}"
    return DomainSet(
        spec,
        tuple(meta["cluster_names"]),
        labels,
        fingerprint(spec, corpus.fingerprint, meta["assignment_fingerprint"]),
    )
