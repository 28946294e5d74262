"""Regroup (R&B step 1): re-partition a corpus into fine-grained semantic domains.

Embed every document, k-means the training documents (k given, or chosen by silhouette or by
short proxy-training runs), assign validation and test documents to the nearest training centroid,
and write the result as a named layer over the corpus: ``data.domains: regrouped:<name>``.

    from domix.regroup import RegroupConfig, regroup
    res = regroup("demo", RegroupConfig(k=8))            # res.name == "k8", res.path, res.report

    domix regroup run demo --k 8          # CPU, ~7 minutes on the demo corpus (embedding dominates)
    domix regroup show demo k8
"""

from ..data.cluster_store import list_artifacts, load_clusters, load_meta
from .cache import EmbeddingCache
from .cluster import CLUSTERERS, KMeansConfig, assign
from .config import ChooseKConfig, RayConfig, RegroupConfig
from .embed import EMBEDDERS, EmbedConfig, Embedder, EmbedError
from .engine import ENGINES, Assignment
from .onnx_embed import OnnxEmbedder  # registers embed.name=onnx
from .pipeline import RegroupResult, regroup

__all__ = [
    "CLUSTERERS",
    "EMBEDDERS",
    "ENGINES",
    "Assignment",
    "ChooseKConfig",
    "EmbedConfig",
    "EmbedError",
    "OnnxEmbedder",
    "Embedder",
    "EmbeddingCache",
    "KMeansConfig",
    "RayConfig",
    "RegroupConfig",
    "RegroupResult",
    "assign",
    "list_artifacts",
    "load_clusters",
    "load_meta",
    "regroup",
]
