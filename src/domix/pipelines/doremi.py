"""``domix mix doremi``: DoReMi's three stages (Xie et al. 2023), the first two here.

1. ``reference``: an ordinary run on the reference mixture (stratified by default; the paper's
   uniform setting, or proportional).
2. ``proxy``: a run of the same model and length with the ``doremi`` method (excess-loss Group DRO,
   ``balance/methods/doremi.py``); its ``excess_loss`` signal runs the reference's final checkpoint
   forward on every step's batch.
3. The artifact ``mixture.json``: the proxy's time-averaged domain weights, for a final run with
   ``mixing.method=fixed mixing.params.path=<out>/mixture.json``.

The paper trains reference and proxy at the same (small) size and step count; domix uses the run
config for both (``reference_steps`` / ``proxy_steps`` override the step count).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config import Config
from ..types import Mixture
from . import PIPELINES, Artifact, Pipeline


@dataclass
class DoReMiPipelineConfig(Config):
    reference_mixture: Literal["stratified", "proportional"] = "stratified"
    reference_steps: int | None = None  # default: the run config's
    proxy_steps: int | None = None
    eta: float = 1.0
    smoothing: float = 1e-3
    update_every: int = 1


@PIPELINES.register("doremi")
class DoReMiPipeline(Pipeline):
    Config = DoReMiPipelineConfig
    name = "doremi"
    signals = frozenset({"excess_loss"})
    reference = "Xie et al. 2023, DoReMi (NeurIPS 2023, arXiv 2305.10429)"
    cost = "2 extra runs (reference, proxy); proxy: 1 extra forward per step"

    def run(self) -> Artifact:
        c = self.config
        self.begin()
        self.train_stage("reference", {"method": c.reference_mixture}, c.reference_steps)
        params = {"eta": c.eta, "smoothing": c.smoothing, "sample": c.reference_mixture,
                  "update_every": c.update_every}
        signals = {"excess_loss": {"reference": str(self.out / "reference")}}
        proxy = self.train_stage("proxy", {"method": "doremi", "params": params, "signals": signals},
                                 c.proxy_steps)
        mixture = Mixture.from_mapping(proxy["mixture"], self.data.train.names)
        path = self.out / "mixture.json"
        return self.finish("mixture.json", mixture,
                           ["mixing.method=fixed", f"mixing.params.path={path}"])
