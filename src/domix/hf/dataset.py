"""A ``transformers.Trainer`` train dataset whose batches are drawn by domix's ``MixtureSampler``.

``Trainer`` builds its own ``DataLoader`` (and, for a map-style dataset, its own random sampler), so
domix hands it an ``IterableDataset``: each draw of the sampler is one batch of ``batch_size``
examples, sorted by domain, yielded in order; with ``per_device_train_batch_size == batch_size``
every batch the Trainer collates is exactly one draw. ``MixtureCallback`` checks that at the start
of training (a mismatch, worker processes or another train dataset are errors, not a silently
different mixture).

Two sources of examples:

- ``PackedSource``: domix's own packed sequences (``RunData.train``, from a run config): each
  example is ``{"input_ids", "labels", "domain"}`` with ``labels == input_ids``, the first L tokens
  of a packed window, so Trainer's causal-LM loss (which shifts labels by one) trains on L - 1
  targets per sequence. domix's own loop uses the window's L + 1 tokens for L targets; the
  Hugging Face convention keeps the model's context at L.
- ``ExampleSource``: any indexable of example dicts (a ``datasets.Dataset``, a list) with a domain
  column; examples are passed through unchanged plus ``"domain"`` (the domain's index), so the
  user's data collator pads them as usual.

The weights come from any registered method. A static one (stratified, proportional, fixed) is
applied here and works with a plain ``Trainer``; an online one (rnb, dograph, odm, ...) updates them
from training signals and needs ``domix.hf.MixtureTrainer`` (hf/trainer.py), which also draws each
batch at the moment it is trained on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..balance.base import Domains, build_method
from ..data.packed import PackedDomains
from ..data.records import IGNORE
from ..data.sampler import MixtureSampler
from ..types import Mixture

if TYPE_CHECKING:
    from ..run import RunData


class PackedSource:
    """Examples from domix's packed per-domain sequences.

    ``target`` / ``target_macro``: pbar for methods that aim at an evaluation mixture (R&B);
    ``validation``: held-out sequences of the same domains, for methods that read a per-domain
    validation loss. ``PackedSource.from_run(data)`` takes all of them from a ``RunData``.
    """

    def __init__(self, packed: PackedDomains, target: np.ndarray | None = None,
                 target_macro: np.ndarray | None = None, validation: PackedDomains | None = None) -> None:
        self.packed, self.validation = packed, validation
        self.target, self.target_macro = target, target_macro
        self.names = packed.names
        self.num_sequences = packed.num_sequences
        self.tokens = packed.tokens_per_domain.astype(np.float64)

    @classmethod
    def from_run(cls, data: RunData) -> PackedSource:
        return cls(data.train, data.target, data.target_macro, data.domain_eval)

    def examples(self, dom_B: np.ndarray, seq_B: np.ndarray) -> list[dict[str, Any]]:
        batch_BT = torch.from_numpy(self.packed.gather(dom_B, seq_B))
        targets_BT, valid_BT = self.packed.targets(batch_BT, dom_B, seq_B)
        if valid_BT is None:  # labels == input_ids: the model shifts them itself
            return [{"input_ids": x, "labels": x, "domain": int(d)} for x, d in zip(batch_BT[:, :-1], dom_B)]
        # prompt/response records: the model's shift drops labels[0], so labels[t] = target[t - 1]
        labels_BT = torch.cat([torch.full_like(targets_BT[:, :1], IGNORE), targets_BT[:, :-1]], 1)
        return [{"input_ids": x, "labels": y, "domain": int(d)} for x, y, d in zip(batch_BT[:, :-1], labels_BT, dom_B)]


class ExampleSource:
    """Examples from an indexable of dicts with a domain column (``datasets.Dataset`` or a list).

    Domains are the column's distinct values, sorted; proportional weights count each domain's
    ``input_ids`` tokens when examples have them, else its examples.
    """

    def __init__(self, examples: Sequence[dict[str, Any]], domain_column: str = "domain") -> None:
        self.data = examples
        try:
            labels = _column(examples, domain_column)
        except KeyError as e:
            raise ValueError(f"{e.args[0]}: domix needs every example's domain "
                             f"(name its column with domain_column=)") from None
        missing = [i for i, v in enumerate(labels) if v is None]
        if missing:
            raise ValueError(f"example {missing[0]} has no '{domain_column}' value "
                             f"({len(missing)} examples without a domain); domix needs every example's domain")
        self.names = tuple(sorted({str(v) for v in labels}))
        code = {n: i for i, n in enumerate(self.names)}
        dom = np.array([code[str(v)] for v in labels], dtype=np.int64)
        order = np.argsort(dom, kind="stable")
        self.members = np.split(order, np.cumsum(np.bincount(dom, minlength=len(self.names)))[:-1])
        self.num_sequences = np.array([len(x) for x in self.members], dtype=np.int64)
        try:
            lengths = np.array([len(x) for x in _column(examples, "input_ids")], dtype=np.float64)
        except KeyError:
            lengths = np.ones(len(dom))
        self.tokens = np.bincount(dom, weights=lengths, minlength=len(self.names))

    def examples(self, dom_B: np.ndarray, seq_B: np.ndarray) -> list[dict[str, Any]]:
        rows = [int(self.members[d][s]) for d, s in zip(dom_B, seq_B)]
        return [{**self.data[r], "domain": int(d)} for r, d in zip(rows, dom_B)]


def _column(examples: Sequence[dict[str, Any]], name: str) -> list[Any]:
    columns = getattr(examples, "column_names", None)
    if columns is not None:  # a datasets.Dataset: read the column at once
        if name not in columns:
            raise KeyError(f"the dataset has no '{name}' column (columns: {', '.join(columns)})")
        return list(examples[name])
    out = []
    for i, ex in enumerate(examples):
        if name not in ex:
            raise KeyError(f"example {i} has no '{name}' field (fields: {', '.join(ex)})")
        out.append(ex[name])
    return out


class MixtureDataset(torch.utils.data.IterableDataset):
    """An endless stream of examples, ``batch_size`` per draw of a ``MixtureSampler``.

    ``method``/``params``/``signals``: a registered mixing method, its parameters and its signals'
    settings (as ``mixing.*`` in a run config). ``seed``: the sampler's (the same seed gives the same
    batches as domix's own loop on the same data).
    """

    def __init__(self, source: PackedSource | ExampleSource, batch_size: int, method: str = "stratified",
                 params: dict[str, Any] | None = None, seed: int = 0,
                 signals: dict[str, dict[str, Any]] | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.source, self.batch_size = source, batch_size
        self.method_name, self.method = method, build_method(method, params)
        self.signals = signals or {}
        self.domains = Domains(tuple(source.names), source.tokens, getattr(source, "target", None),
                               getattr(source, "target_macro", None))
        m = len(self.domains)
        # a static method's weights now; an online method's from its first proposal, at the start of training
        weights = self.method.start(self.domains).weights.weights if self.method.static else np.full(m, 1 / m)
        self.sampler = MixtureSampler(source.num_sequences, weights, seed=seed)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.source.names)

    def shard(self, rank: int, world_size: int) -> None:
        """Draw this rank's ``batch_size`` of each global batch (``batch_size`` x ``world_size``), as
        domix's data-parallel loop does. Only before the first draw."""
        if self.sampler.draws.any():
            raise RuntimeError("MixtureDataset.shard() after batches were drawn")
        self.sampler = MixtureSampler(self.source.num_sequences, self.sampler.weights, self.sampler.seed,
                                      rank, world_size)

    @property
    def mixture(self) -> Mixture:
        """The weights the sampler draws with now."""
        return Mixture(self.names, self.sampler.weights)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if torch.utils.data.get_worker_info() is not None:
            raise RuntimeError("MixtureDataset draws its batches in order from one sampler: "
                               "set dataloader_num_workers=0 (TrainingArguments)")
        while True:
            yield from self.source.examples(*self.sampler.next(self.batch_size))
