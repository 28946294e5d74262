"""MixtureSampler: which (domain, sequence) pairs make up each batch, given the current weights.

Each call draws one *global* batch (``batch_size`` per rank x ``world_size``) and returns this
rank's share. Every rank runs the same draws with the same seed and weights, so shares are
disjoint and no communication is needed.

- Domains per global batch come from systematic sampling of the weights (one uniform offset, G
  evenly spaced points on the weights' CDF): domain d gets floor or ceil of G * w_d slots, so
  token proportions track the weights with far less noise than i.i.d. draws, and are unbiased.
  All sequences are L tokens long, so shares of sequences are shares of tokens.
- Within a domain, sequences are visited without replacement in a pseudo-random order per epoch:
  sequence ``perm_{seed,d,e}(k mod n_d)`` for the domain's k-th draw, with a keyed
  permutation (a bijective hash with cycle-walking) computed on the fly. Memory is O(domains) at any corpus size, and
  the state is the RNG state plus one draw counter per domain, so resume is exact.
- Weights may change at any step; domains with weight 0 are never drawn.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, elementwise on uint64 (wrapping arithmetic)."""
    z = (z + _M1) * _M2
    z = (z ^ (z >> np.uint64(31))) * _M3
    return z ^ (z >> np.uint64(29))


_ODD = [np.uint64(c) for c in (0xD6E8FEB86659FD93, 0xA0761D6478BD642F, 0xE7037ED1A0B428DB)]


def permute_index(x: np.ndarray, n: np.ndarray, key: np.ndarray) -> np.ndarray:
    """A keyed bijection of [0, n) applied elementwise (n and key may differ per element).

    Rounds of invertible steps on ``bits = ceil(log2 n)``-bit integers (xor a round key, multiply
    by an odd constant mod 2^bits, xor-shift right by half the width); values that land in
    [n, 2^bits) are walked again until they fall in range (cycle-walking). The domain is under 2n,
    so a value needs two rounds of walking on average.
    """
    x = np.asarray(x, dtype=np.uint64).copy()
    n = np.asarray(n, dtype=np.uint64)
    key = np.asarray(key, dtype=np.uint64)
    bits = np.ceil(np.log2(np.maximum(n, 2).astype(np.float64))).astype(np.uint64)
    mask = (np.uint64(1) << bits) - np.uint64(1)
    shift = np.maximum(bits // np.uint64(2), np.uint64(1))
    round_keys = [_mix(key + np.uint64(r)) for r in range(len(_ODD))]
    todo = np.arange(len(x))
    while len(todo):
        y, m, s = x[todo], mask[todo], shift[todo]
        for rk, odd in zip(round_keys, _ODD):
            y = ((y ^ rk[todo]) * odd) & m
            y ^= y >> s
        x[todo] = y
        todo = todo[y >= n[todo]]
    return x.astype(np.int64)


class MixtureSampler:
    def __init__(
        self,
        num_sequences: np.ndarray,
        weights: np.ndarray,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.num_sequences = np.asarray(num_sequences, dtype=np.int64)
        if self.num_sequences.ndim != 1 or len(self.num_sequences) == 0:
            raise ValueError("num_sequences must list at least one domain")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.seed = int(seed)
        self.rank, self.world_size = rank, world_size
        self.rng = np.random.Generator(np.random.PCG64([self.seed, 0xD0D1]))
        self.draws = np.zeros(len(self.num_sequences), dtype=np.int64)  # per domain, global
        self.set_weights(weights)

    @property
    def num_domains(self) -> int:
        return len(self.num_sequences)

    def set_weights(self, weights: np.ndarray) -> None:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != self.num_sequences.shape:
            raise ValueError(f"{w.size} weights for {self.num_domains} domains")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError("weights must be finite, non-negative and not all zero")
        empty = (w > 0) & (self.num_sequences == 0)
        if empty.any():
            raise ValueError(
                f"positive weight on domains with no sequences: {np.flatnonzero(empty)[:10].tolist()}"
            )
        self.weights = w / w.sum()
        self._cdf = np.cumsum(self.weights)
        self._cdf[-1] = 1.0

    def next(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """This rank's ``batch_size`` (domain, sequence) pairs, sorted by domain."""
        G = batch_size * self.world_size
        points = (self.rng.random() + np.arange(G)) / G
        dom = np.minimum(np.searchsorted(self._cdf, points, side="right"), self.num_domains - 1)
        dom = _skip_zero_weight(dom, self.weights)
        # k-th draw of each domain: its running counter plus the rank within this batch
        first = np.searchsorted(dom, dom, side="left")
        k = self.draws[dom] + (np.arange(G) - first)
        change = np.flatnonzero(np.diff(dom, prepend=-1))
        self.draws[dom[change]] += np.diff(np.append(change, G))
        n = self.num_sequences[dom]
        epoch = k // n
        key = _mix(_mix(np.uint64(self.seed) ^ dom.astype(np.uint64)) + epoch.astype(np.uint64))
        seq = permute_index(k % n, n, key)
        mine = self.rng.permutation(G)[self.rank * batch_size : (self.rank + 1) * batch_size]
        mine.sort()  # slots are ordered by domain, so this keeps the share grouped by domain
        return dom[mine], seq[mine]

    @property
    def epochs(self) -> np.ndarray:
        """How many times each domain's sequences have been gone through (fractional)."""
        return self.draws / np.maximum(self.num_sequences, 1)

    def state_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "rng": self.rng.bit_generator.state,
            "draws": self.draws.copy(),
            "weights": self.weights.copy(),
            "num_sequences": self.num_sequences.copy(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not np.array_equal(state["num_sequences"], self.num_sequences):
            raise ValueError("sampler state is for different data (sequence counts differ)")
        self.seed = int(state["seed"])
        self.rng.bit_generator.state = state["rng"]
        self.draws = np.array(state["draws"], dtype=np.int64)
        self.set_weights(state["weights"])


def _skip_zero_weight(dom: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Floating-point edges can land a point on a zero-weight domain; move it to the next positive."""
    bad = w[dom] <= 0
    if not bad.any():
        return dom
    pos = np.flatnonzero(w > 0)
    idx = np.minimum(np.searchsorted(pos, dom[bad]), len(pos) - 1)
    dom = dom.copy()
    dom[bad] = pos[idx]
    return np.sort(dom)
