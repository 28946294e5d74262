"""Core value types: a Mixture is validated weights over named domains.

The mixing-method protocol's Observation and Proposal live in ``domix.balance.base``; a Mixture is
what crosses every boundary (a method's output, a sampler's input, a static mixture artifact).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import io


class MixtureError(ValueError):
    pass


@dataclass(frozen=True, eq=False)
class Mixture:
    """Weights over named domains: finite, non-negative, summing to one (renormalised exactly)."""

    domains: tuple[str, ...]
    weights: np.ndarray

    def __post_init__(self) -> None:
        domains = tuple(str(d) for d in self.domains)
        w = np.asarray(self.weights, dtype=np.float64).reshape(-1).copy()
        if len(domains) != len(w):
            raise MixtureError(f"{len(w)} weights for {len(domains)} domains")
        if len(set(domains)) != len(domains):
            dup = sorted({d for d in domains if domains.count(d) > 1})
            raise MixtureError(f"duplicate domain names: {dup[:5]}")
        if len(w) == 0:
            raise MixtureError("a mixture needs at least one domain")
        if not np.all(np.isfinite(w)):
            raise MixtureError(f"weights must be finite, got {w[~np.isfinite(w)][:5]}")
        if np.any(w < 0):
            raise MixtureError(f"weights must be non-negative, got min {w.min():.3g}")
        total = w.sum()
        if total <= 0:
            raise MixtureError("weights sum to zero")
        w /= total
        w.setflags(write=False)
        object.__setattr__(self, "domains", domains)
        object.__setattr__(self, "weights", w)

    @classmethod
    def uniform(cls, domains: Sequence[str]) -> Mixture:
        return cls(tuple(domains), np.full(len(domains), 1.0 / max(len(domains), 1)))

    @classmethod
    def from_mapping(
        cls, weights: Mapping[str, float], domains: Sequence[str] | None = None
    ) -> Mixture:
        """Weights by name. With ``domains``, names must match them; missing names get weight 0."""
        if domains is None:
            return cls(tuple(weights), np.array(list(weights.values()), dtype=np.float64))
        unknown = sorted(set(weights) - set(domains))
        if unknown:
            raise MixtureError(
                f"mixture names unknown domains {unknown[:5]}; known: {list(domains)[:10]}"
            )
        return cls(tuple(domains), np.array([float(weights.get(d, 0.0)) for d in domains]))

    def as_dict(self) -> dict[str, float]:
        return {d: float(w) for d, w in zip(self.domains, self.weights)}

    def __getitem__(self, domain: str) -> float:
        return float(self.weights[self.domains.index(domain)])

    def __len__(self) -> int:
        return len(self.domains)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Mixture)
            and self.domains == other.domains
            and np.array_equal(self.weights, other.weights)
        )

    def __repr__(self) -> str:
        top = sorted(self.as_dict().items(), key=lambda kv: -kv[1])[:6]
        body = ", ".join(f"{d}={w:.3f}" for d, w in top)
        more = f", ... ({len(self)} domains)" if len(self) > 6 else ""
        return f"Mixture({body}{more})"

    def save(self, path: str | Path, **meta: object) -> None:
        io.write_json(
            path, {"domains": list(self.domains), "weights": self.weights.tolist(), **meta}
        )

    @classmethod
    def load(cls, path: str | Path) -> Mixture:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(tuple(data["domains"]), np.array(data["weights"], dtype=np.float64))
        except (OSError, KeyError, json.JSONDecodeError) as e:
            raise MixtureError(f"{path}: not a mixture file ({e})") from e
