"""Regroup's settings: what ``domix regroup run`` and ``regroup.yaml`` set, in one place that
every regroup module can import (the engines, the k sweep and the pipeline read it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..config import Config, ConfigError
from .cluster import KMeansConfig
from .embed import EmbedConfig

PROXY_DEFAULTS = [  # a CPU-seconds budget per k: the 1-layer micro model, 40 steps
    "model.preset=micro",
    "train.steps=40",
    "train.batch_size=8",
    "train.warmup_steps=4",
    "train.eval_every=40",
    "train.log_every=10",
    "train.checkpoint_every=1000",
    "train.eval_tokens_per_domain=4096",
    "train.progress=false",
]


@dataclass
class ChooseKConfig(Config):
    method: Literal["silhouette", "proxy"] = "silhouette"
    k_min: int = 4
    k_max: int = 32
    k_step: int = 4
    silhouette_sample: int = 5000  # documents scored per k (silhouette is quadratic)
    proxy_overrides: list[str] = field(default_factory=lambda: list(PROXY_DEFAULTS))

    def validate(self) -> None:
        if self.k_min < 2 or self.k_max < self.k_min or self.k_step <= 0:
            raise ConfigError(
                f"choose_k: need 2 <= k_min <= k_max and k_step > 0, got k_min={self.k_min}, "
                f"k_max={self.k_max}, k_step={self.k_step}"
            )
        if self.silhouette_sample < 10:
            raise ConfigError("choose_k.silhouette_sample must be at least 10")

    def ks(self) -> list[int]:
        return list(range(self.k_min, self.k_max + 1, self.k_step))


@dataclass
class RayConfig(Config):
    address: str | None = None  # an existing cluster ("auto", "ray://host:10001"); None = local
    num_workers: int = 1  # embedding actors (each loads the model once)
    cpus_per_worker: float = 1.0
    num_cpus: int | None = None  # local instance only: CPUs Ray may use (None = all)

    def validate(self) -> None:
        if self.num_workers <= 0 or self.cpus_per_worker <= 0:
            raise ConfigError("ray.num_workers and ray.cpus_per_worker must be positive")


@dataclass
class RegroupConfig(Config):
    k: int | str = "auto"  # a number of clusters, or "auto" (see choose_k)
    seed: int = 0  # fit sample, k-means++ and restarts, report samples
    engine: Literal["local", "ray"] = "local"
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    cluster: KMeansConfig = field(default_factory=KMeansConfig)
    choose_k: ChooseKConfig = field(default_factory=ChooseKConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    embed_cache: str | None = None  # embedding cache folder (default: <cache>/embeddings/<key>)
    report_docs_per_cluster: int = 300  # documents sampled per cluster for the top terms
    map_points: int = 3000  # training documents drawn on the PCA map

    def validate(self) -> None:
        if isinstance(self.k, str) and self.k != "auto":
            if not self.k.strip().isdigit():
                raise ConfigError(f"k must be a number of clusters or 'auto', got {self.k!r}")
            self.k = int(self.k)
        if isinstance(self.k, int) and self.k < 2:
            raise ConfigError(f"k must be at least 2, got {self.k}")
