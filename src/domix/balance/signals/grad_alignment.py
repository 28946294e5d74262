"""``grad_alignment``: per-domain gradients of the whole model and their alignment with the gradient
of a validation batch, every step (DoGE). This signal takes over the step's backward pass.

For each domain i present in the batch, ``g_i`` is the gradient of the mean loss of domain i's
target tokens (prompt/response records: its response tokens) with respect to every trainable
parameter (one backward pass each over the step's graph, kept alive with ``retain_graph``, as in
the DoGE authors' code). ``g_val`` is the gradient of the
mean loss of a validation batch: ``val_batch_size`` sequences of the training domains' validation
split (the fixed, capped set the evaluator uses), drawn with the target shares pbar
(``Domains.target``) by a seeded ``MixtureSampler`` of its own (one extra forward and backward).

The model's gradient is then written from the per-domain ones, ``.grad = sum_i w_i g_i`` with
w = the loss weights in force (``Proposal.loss_weights``), or the token shares n_i / N without
them (n_i: domain i's target tokens): exactly the gradient of the step's objective, with no
further backward pass. The validation loss is likewise the mean over the validation batch's
target tokens.

``value()`` returns, for each step of the hold, ``align`` = <g_i, g_val> [m], ``norm`` = ||g_i|| [m],
``present`` [m] (domains with tokens in the batch) and ``lr`` (the step's learning rate).

Extra compute (``extra``): m_present + 1 backward passes, 1 forward pass and the validation
batch's tokens (``eval_tokens``) per step. Memory: m flat fp32 copies of the model's gradient.
Single process only: under data parallelism per-domain gradients would need their own all-reduce
(not implemented; a clear error says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...config import Config, ConfigError
from ...data.sampler import MixtureSampler
from ...train.evaluate import domain_sums, per_token_loss
from . import SIGNALS, Signal


@dataclass
class GradAlignmentConfig(Config):
    val_batch_size: int | None = None  # sequences per validation batch; default: train.batch_size
    seed: int = 0  # validation batch order

    def validate(self) -> None:
        if self.val_batch_size is not None and self.val_batch_size < 1:
            raise ConfigError("mixing.signals.grad_alignment.val_batch_size must be positive")


def flat_grad(loss: torch.Tensor, params: list[torch.Tensor], retain: bool) -> torch.Tensor:
    grads = torch.autograd.grad(loss, params, retain_graph=retain, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1).float() for p, g in zip(params, grads)])


@SIGNALS.register("grad_alignment")
class GradAlignment(Signal):
    Config = GradAlignmentConfig
    masked_loss = True  # per-domain and validation means over the target tokens only

    def __init__(self, config: GradAlignmentConfig, domains, trainer) -> None:
        super().__init__(config, domains, trainer)
        if trainer.distributed:
            raise RuntimeError("the grad_alignment signal (DoGE) runs in a single process only: "
                               "per-domain gradients are not all-reduced across ranks")
        if trainer.domain_evaluator is None:
            raise RuntimeError("the grad_alignment signal needs the trainer's domain_evaluator: its validation "
                               "sequences of the training domains are the validation batches (see domix.run)")
        self.val = trainer.domain_evaluator.packed
        m = len(domains)
        target = np.full(m, 1.0 / m) if domains.target is None else np.asarray(domains.target, dtype=np.float64)
        target = np.where(self.val.num_sequences > 0, target, 0.0)
        if target.sum() <= 0:
            raise RuntimeError("no validation sequences for any targeted training domain: grad_alignment has no "
                               "validation batch (raise train.eval_tokens_per_domain or check the split)")
        self.val_sampler = MixtureSampler(np.maximum(self.val.num_sequences, 0), target, seed=config.seed)
        self.val_batch = config.val_batch_size or trainer.cfg.batch_size
        self.params = [p for p in trainer.model.parameters() if p.requires_grad]
        self.steps: list[dict[str, Any]] = []

    def backward(self, trainer, loss, loss_BT, dom_B) -> bool:
        m = len(self.domains)
        _, tokens_M = domain_sums(loss_BT, dom_B, m, trainer.valid_BT)  # target tokens per domain
        present = tokens_M > 0
        ids = torch.nonzero(present).flatten().tolist()
        # a domain's mean over its target tokens (ignored targets have loss 0)
        grads = [flat_grad(loss_BT[dom_B == d].sum() / tokens_M[d].float(), self.params, retain=True) for d in ids]
        dom_v, seq_v = self.val_sampler.next(self.val_batch)
        batch = torch.from_numpy(self.val.gather(dom_v, seq_v))
        targets_v, valid_v = self.val.targets(batch, dom_v, seq_v)
        val_BT = per_token_loss(trainer.forward_model, batch[:, :-1], targets_v, trainer.cfg.bf16)
        val_tokens = val_BT.numel() if valid_v is None else int(valid_v.sum())
        val_loss = val_BT.sum() / max(val_tokens, 1)
        g_val = flat_grad(val_loss, self.params, retain=False)
        G = torch.stack(grads)  # [k, P]
        w = tokens_M / tokens_M.sum() if trainer.loss_weights is None else trainer.loss_weights.double()
        combined = (w[ids].float()[:, None] * G).sum(0)
        offset = 0
        for p in self.params:
            g = combined[offset : offset + p.numel()].view_as(p).to(p.dtype)
            p.grad = g.clone() if p.grad is None else p.grad.add_(g)
            offset += p.numel()
        align, norm = np.zeros(m), np.zeros(m)
        align[ids] = (G.double() @ g_val.double()).numpy()
        norm[ids] = G.double().norm(dim=1).numpy()
        self.steps.append({"align": align, "norm": norm, "present": present.numpy().copy(),
                           "lr": float(trainer.scheduler.get_last_lr()[0]), "val_loss": float(val_loss.detach())})
        self.extra["backward_passes"] += len(ids) + 1
        self.extra["forward_passes"] += 1
        self.extra["eval_tokens"] += val_tokens
        return True

    def value(self, trainer) -> dict[str, Any]:
        keys = ("align", "norm", "present", "lr", "val_loss")
        return {k: np.array([s[k] for s in self.steps]) for k in keys}

    def reset(self) -> None:
        self.steps = []

    def state_dict(self) -> dict[str, Any]:
        return {"val_sampler": self.val_sampler.state_dict(), "steps": [dict(s) for s in self.steps]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.val_sampler.load_state_dict(state["val_sampler"])
        self.steps = [dict(s) for s in state["steps"]]
