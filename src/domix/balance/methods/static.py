"""Static mixtures: stratified (uniform), proportional (natural, by tokens) and a given mixture.

stratified:    p_i = 1 / m
proportional:  p_i = n_i / sum_j n_j        (n_i: training tokens of domain i)
fixed:         p = the user's weights (by name, missing names get 0) or a saved mixture file
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ... import io
from ...config import Config, ConfigError
from ...types import Mixture
from ..base import METHODS, Domains, MixingMethod, Observation, Proposal


class _Static(MixingMethod):
    static = True

    def weights(self, domains: Domains) -> np.ndarray:
        raise NotImplementedError

    def start(self, domains: Domains) -> Proposal:
        self.domains = domains
        self._current = Mixture(domains.names, self.weights(domains))
        return Proposal(self._current)

    def update(self, obs: Observation) -> Proposal:
        return Proposal(self._current)


@METHODS.register("stratified")
class Stratified(_Static):
    """Equal weight per domain."""

    reference = "baseline"

    def weights(self, domains: Domains) -> np.ndarray:
        return np.full(len(domains), 1.0 / len(domains))


@METHODS.register("proportional")
class Proportional(_Static):
    """Weight proportional to each domain's training tokens (the natural mixture)."""

    reference = "baseline"

    def weights(self, domains: Domains) -> np.ndarray:
        return np.asarray(domains.tokens, dtype=np.float64)


@dataclass
class FixedConfig(Config):
    weights: dict[str, float] = field(default_factory=dict)
    path: str | None = None  # a mixture JSON written by Mixture.save (e.g. by a multi-stage method)

    def validate(self) -> None:
        if bool(self.weights) == bool(self.path):
            raise ConfigError(
                "mixing.params: give exactly one of weights or path for the fixed method"
            )


@METHODS.register("fixed")
class Fixed(_Static):
    """A mixture the user gives, by domain name or as a saved mixture file."""

    Config = FixedConfig
    reference = "user-given mixture"

    def weights(self, domains: Domains) -> np.ndarray:
        if self.config.path:
            m = Mixture.load(self.config.path)
            # a multi-stage method's artifact carries what it cost; the run reports it
            self.extra = Counter(io.read_json(self.config.path).get("extra_compute", {}))
            return Mixture.from_mapping(m.as_dict(), domains.names).weights
        return Mixture.from_mapping(self.config.weights, domains.names).weights
