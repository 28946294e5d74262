"""``sample_grad_features``: per-sample sketches of the LM-head gradient from the normal backward.

For the output layer ``s = W h`` the gradient of one training sequence s is ``G_s = E_s^T H_s`` with
E_s = dL/dlogits of its positions [T, V] (softmax minus one-hot, scaled by the objective) and H_s its
final hidden states [T, d]. A V x d matrix per sample is never formed: with two fixed, seeded
Gaussian projections P1 [V, r1] and P2 [d, r2] (entries N(0, 1/r)),

    f_s = flatten( (E_s P1)^T (H_s P2) ) = flatten( P1^T G_s P2 )     [r1 * r2]

a bilinear sketch whose inner products are unbiased estimates of <G_s, G_t>. Features are the raw
sketches, not normalised: their norm carries how large the sample's error signal is (a sample the
model predicts badly has a larger dL/dlogits); a method that clusters directions (DoGraph)
normalises them itself.

E and H are read in the ordinary training step, as ``domain_grad_gram`` does, but with hooks rather
than a replaced backward: a forward hook on the head keeps its input H and registers a hook on its
output that receives dL/dlogits during ``loss.backward()``. Nothing changes in the model's gradient,
and it composes with other signals. Only up to ``max_samples`` sequences per hold are sketched (an
evenly spaced subset of each batch while room is left), so a method asks for this signal only on
the few probe steps before it refreshes. With tied embeddings the feature is the head's share of
the gradient (the final layer), not the input embedding's.

Validation sketches (``val_samples`` > 0, the default 32): when the value is read, the same sketch
of ``val_samples`` validation sequences of the training domains (the evaluator's fixed validation
split, drawn uniformly over the domains that have one by a seeded sampler) from one forward pass
without gradients: E = softmax - one-hot per target position, scaled as in training (divided by
the training batch's target tokens: B x T for packed sequences, the response tokens for
prompt/response records, whose other positions get E = 0 as in training), so a validation
feature is on the scale of a training one. This is the target side of DoGraph's utility (the
gradient the training mixture should match); it costs ``val_samples`` sequences of forward pass per read (``eval_tokens``).

Settings (``mixing.signals.sample_grad_features``): ``r1``, ``r2``, ``max_samples``,
``val_samples``, ``seed``. ``value()``: ``{"features": [n, r1*r2] float32, "domains": [n]
training-domain ids, "val_features": [v, r1*r2], "val_domains": [v]}``, gathered over data-parallel
ranks (each rank sketches its own share of samples and validation sequences). Extra compute
(``extra``): ``sketch_flops`` (the projections' multiply-adds x 2), ``sketch_samples``,
``val_samples`` and ``eval_tokens``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...config import Config, ConfigError
from ...data.records import IGNORE
from ...data.sampler import MixtureSampler
from . import SIGNALS, Signal, all_reduce_


@dataclass
class SampleGradConfig(Config):
    r1: int = 16  # projection of the vocabulary side (E_s P1)
    r2: int = 16  # projection of the hidden side (H_s P2)
    max_samples: int = 256  # sequences sketched per hold (per rank)
    val_samples: int = 32  # validation sequences sketched per read (per rank); 0 = none
    seed: int = 0

    def validate(self) -> None:
        for k in ("r1", "r2", "max_samples"):
            if getattr(self, k) < 1:
                raise ConfigError(f"mixing.signals.sample_grad_features.{k} must be positive")
        if self.val_samples < 0:
            raise ConfigError("mixing.signals.sample_grad_features.val_samples must be non-negative")


class HeadSketch:
    """Hooks on an output layer that sketch the per-sample weight gradient of selected sequences."""

    def __init__(self, head: torch.nn.Module, r1: int, r2: int, seed: int = 0) -> None:
        if not isinstance(head, torch.nn.Linear):
            raise TypeError(f"the output layer is {type(head).__name__}, not nn.Linear: cannot sketch its gradient")
        V, D = head.weight.shape
        g = torch.Generator().manual_seed(seed)
        self.P1_VR = torch.randn(V, r1, generator=g) / r1**0.5
        self.P2_DR = torch.randn(D, r2, generator=g) / r2**0.5
        self.select: torch.Tensor | None = None  # rows of the coming batch to sketch
        self.out: list[torch.Tensor] = []  # features [q, r1 * r2] per backward
        self.flops = 0
        self._head = head
        self._handle = head.register_forward_hook(self._on_forward)

    def _on_forward(self, module, inputs, logits_BTV):
        if self.select is None or not logits_BTV.requires_grad:  # not collecting, or evaluation
            return
        h_BTD, idx = inputs[0].detach(), self.select
        self.select = None
        every = len(idx) == len(h_BTD)  # the whole batch: no copy of dL/dlogits
        logits_BTV.register_hook(
            lambda e_BTV: self._sketch(e_BTV.detach() if every else e_BTV.detach()[idx], h_BTD if every else h_BTD[idx]))

    def _sketch(self, e_QTV: torch.Tensor, h_QTD: torch.Tensor) -> None:
        self.out.append(self.project(e_QTV, h_QTD))

    def project(self, e_QTV: torch.Tensor, h_QTD: torch.Tensor) -> torch.Tensor:
        """flatten((E P1)^T (H P2)) per sequence, [Q, r1 * r2]; counts its FLOPs."""
        a_QTR = e_QTV.float() @ self.P1_VR
        b_QTR = h_QTD.float() @ self.P2_DR
        Q, T, V = e_QTV.shape
        r1, r2 = self.P1_VR.shape[1], self.P2_DR.shape[1]
        self.flops += 2 * Q * T * (V * r1 + h_QTD.shape[2] * r2 + r1 * r2)
        return (a_QTR.transpose(1, 2) @ b_QTR).flatten(1)

    @torch.no_grad()
    def sketch_eval(self, model: torch.nn.Module, batch_BT: torch.Tensor, targets_BT: torch.Tensor,
                    scale: float, bf16: bool, chunk: int = 16) -> torch.Tensor:
        """The sketch of each sequence's head gradient, from a forward pass only: E = (softmax -
        one-hot) * ``scale`` at every target position, 0 where the target is ``IGNORE`` (the
        gradient of ``scale`` x the summed token loss)."""
        head, kept, out = self._head, {}, []
        handle = head.register_forward_hook(lambda mod, inp, o: kept.update(h=inp[0]))
        try:
            for x_BT, y_BT in zip(batch_BT.split(chunk), targets_BT.split(chunk)):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    logits_BTV = model(input_ids=x_BT[:, :-1]).logits
                keep_BT1 = (y_BT != IGNORE)[:, :, None]
                e_BTV = torch.softmax(logits_BTV.float(), dim=-1)
                e_BTV.scatter_add_(2, y_BT.clamp(min=0)[:, :, None], torch.full(keep_BT1.shape, -1.0))
                out.append(self.project(e_BTV.mul_(keep_BT1 * scale), kept["h"]))
        finally:
            handle.remove()
        return torch.cat(out) if out else torch.zeros(0, self.P1_VR.shape[1] * self.P2_DR.shape[1])

    def remove(self) -> None:
        self._handle.remove()


@SIGNALS.register("sample_grad_features")
class SampleGradFeatures(Signal):
    Config = SampleGradConfig
    masked_loss = True  # an ignored target's dL/dlogits is 0 in training, and E is 0 there in validation

    def __init__(self, config: SampleGradConfig, domains, trainer) -> None:
        super().__init__(config, domains, trainer)
        self.sketch = HeadSketch(trainer.model.get_output_embeddings(), config.r1, config.r2, config.seed)
        self.dim = config.r1 * config.r2
        self.batch_tokens = 0  # target tokens of the last training batch: the scale of its dL/dlogits
        self.val_sampler: MixtureSampler | None = None  # built on first use (the evaluator is set late)
        self._val_state: dict[str, Any] | None = None  # a resumed sampler state, until it is built
        self.reset()

    def on_batch(self, trainer, dom_B: torch.Tensor) -> None:
        valid = trainer.valid_BT  # records: the responses' targets; packed sequences: None (all)
        self.batch_tokens = len(dom_B) * trainer.context_length if valid is None else int(valid.sum())
        room = self.config.max_samples - len(self.domains_seen)
        if room <= 0:
            return
        B = len(dom_B)
        idx = torch.arange(B) if room >= B else torch.linspace(0, B - 1, room).round().long().unique()
        self.sketch.select = idx
        self.domains_seen.extend(dom_B[idx].tolist())

    def on_backward(self, trainer) -> None:
        if self.sketch.out:
            self.features.extend(self.sketch.out)
            self.sketch.out = []
        self.sketch.select = None

    def on_step_end(self, trainer, out) -> None:
        self.extra["sketch_flops"] += self.sketch.flops
        self.sketch.flops = 0

    def _local(self) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self.domains_seen)
        feats = torch.cat(self.features) if self.features else torch.zeros(0, self.dim)
        if len(feats) != n:
            raise RuntimeError(f"sample_grad_features: {n} samples selected but {len(feats)} sketched "
                               "(was a backward pass skipped?)")
        return feats, torch.tensor(self.domains_seen, dtype=torch.long)

    def value(self, trainer) -> dict[str, Any]:
        feats, dom = self._local()
        self.extra["sketch_samples"] += len(dom)
        val_feats, val_dom = self._validation(trainer)
        feats, dom = _gather(feats, dom, self.config.max_samples)
        val_feats, val_dom = _gather(val_feats, val_dom, self.config.val_samples)
        return {"features": feats.numpy().copy(), "domains": dom.numpy().copy(),
                "val_features": val_feats.numpy().copy(), "val_domains": val_dom.numpy().copy()}

    def _validation(self, trainer) -> tuple[torch.Tensor, torch.Tensor]:
        """Sketches of ``val_samples`` validation sequences (this rank's share), forward only."""
        evaluator = trainer.domain_evaluator
        if self.config.val_samples == 0 or evaluator is None or self.batch_tokens == 0:
            return torch.zeros(0, self.dim), torch.zeros(0, dtype=torch.long)
        packed = evaluator.packed
        if self.val_sampler is None:
            has = (packed.num_sequences > 0).astype(np.float64)
            if has.sum() == 0:
                return torch.zeros(0, self.dim), torch.zeros(0, dtype=torch.long)
            self.val_sampler = MixtureSampler(packed.num_sequences, has, seed=self.config.seed,
                                              rank=trainer.rank, world_size=trainer.world_size)
            if self._val_state is not None:
                self.val_sampler.load_state_dict(self._val_state)
        dom_v, seq_v = self.val_sampler.next(self.config.val_samples)
        batch = torch.from_numpy(packed.gather(dom_v, seq_v))
        targets, valid = packed.targets(batch, dom_v, seq_v)
        flops = self.sketch.flops
        model = trainer.model
        was_training = model.training
        model.eval()
        try:
            feats = self.sketch.sketch_eval(model, batch, targets, 1.0 / self.batch_tokens, trainer.cfg.bf16)
        finally:
            model.train(was_training)
        self.extra["sketch_flops"] += self.sketch.flops - flops
        self.sketch.flops = flops
        self.extra["val_samples"] += len(dom_v)
        self.extra["eval_tokens"] += targets.numel() if valid is None else int(valid.sum())
        return feats, torch.from_numpy(np.asarray(dom_v, dtype=np.int64))

    def reset(self) -> None:
        self.features: list[torch.Tensor] = []
        self.domains_seen: list[int] = []

    def close(self) -> None:
        self.sketch.remove()

    def state_dict(self) -> dict[str, Any]:
        feats, dom = self._local()
        return {"features": feats.clone(), "domains": dom.clone(), "batch_tokens": self.batch_tokens,
                "val_sampler": None if self.val_sampler is None else self.val_sampler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.features = [state["features"].clone()] if len(state["domains"]) else []
        self.domains_seen = [int(d) for d in state["domains"]]
        self.batch_tokens = int(state.get("batch_tokens", 0))
        self._val_state = state.get("val_sampler")  # applied when the sampler is built
        if self.val_sampler is not None and self._val_state is not None:
            self.val_sampler.load_state_dict(self._val_state)


def _gather(feats: torch.Tensor, dom: torch.Tensor, N: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every rank's rows (at most N each), concatenated on all ranks (as-is in one process)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return feats, dom
    world, rank = torch.distributed.get_world_size(), torch.distributed.get_rank()
    buf = torch.zeros(world, N, feats.shape[1])
    ids = torch.full((world, N), -1, dtype=torch.long)
    buf[rank, : len(dom)], ids[rank, : len(dom)] = feats, dom
    all_reduce_(buf)
    all_reduce_(ids.add_(1))  # -1 marks an empty slot; shifted so that the sum is exact
    keep = (ids - 1 >= 0).flatten()
    return buf.flatten(0, 1)[keep], (ids - 1).flatten()[keep]
