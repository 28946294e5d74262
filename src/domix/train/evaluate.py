"""Per-domain loss on fixed held-out sequences: macro average, token average, worst domain.

On prompt/response records the loss is the responses' (``data/records.py``): held-out responses.

The evaluation set is the validation split packed per domain with a fixed seed and a token cap
per domain, so it is identical across runs, methods and training seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..data.packed import PackedDomains
from ..data.records import IGNORE


def per_token_loss(
    model: torch.nn.Module, inputs_BT: torch.Tensor, targets_BT: torch.Tensor, bf16: bool
) -> torch.Tensor:
    """Cross-entropy of every target token in nats, [B, T], computed in fp32; 0 (and no gradient)
    where the target is ``IGNORE`` (prompt and padding tokens of prompt/response records)."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits_BTV = model(input_ids=inputs_BT).logits
    B, T, V = logits_BTV.shape
    return F.cross_entropy(
        logits_BTV.float().reshape(B * T, V), targets_BT.reshape(B * T), reduction="none",
        ignore_index=IGNORE,
    ).view(B, T)


def domain_sums(
    loss_BT: torch.Tensor, dom_B: torch.Tensor, m: int, valid_BT: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-domain sum of token losses and token counts, each [m] (``valid_BT``: the targets that
    count, None = all)."""
    sums = torch.zeros(m, dtype=torch.float64).index_add_(
        0, dom_B, loss_BT.detach().sum(1).double()
    )
    if valid_BT is None:
        return sums, torch.bincount(dom_B, minlength=m).double() * loss_BT.shape[1]
    return sums, torch.zeros(m, dtype=torch.float64).index_add_(0, dom_B, valid_BT.sum(1).double())


@dataclass
class EvalResult:
    names: tuple[str, ...]
    loss: np.ndarray  # mean token loss per domain (NaN where a domain has no evaluation tokens)
    tokens: np.ndarray  # evaluated tokens per domain
    split_tokens: np.ndarray  # tokens of each domain in the whole validation split (before the cap)

    @property
    def macro(self) -> float:
        return float(np.nanmean(self.loss))

    @property
    def token_average(self) -> float:
        """Per-domain losses weighted by each domain's share of validation-split tokens: an
        estimate of the loss over the whole (uncapped) validation split."""
        ok = (self.tokens > 0) & (self.split_tokens > 0)
        return float((self.loss[ok] * self.split_tokens[ok]).sum() / self.split_tokens[ok].sum())

    @property
    def worst(self) -> tuple[str, float]:
        i = int(np.nanargmax(self.loss))
        return self.names[i], float(self.loss[i])

    def metrics(self, prefix: str = "val") -> dict[str, float]:
        out = {}
        for name, loss in zip(self.names, self.loss):
            out[f"loss/{prefix}/{name}"] = float(loss)
            out[f"ppl/{prefix}/{name}"] = math.exp(min(float(loss), 50.0))
        out[f"loss/{prefix}_macro"] = self.macro
        out[f"loss/{prefix}_token"] = self.token_average
        out[f"loss/{prefix}_worst"] = self.worst[1]
        out[f"ppl/{prefix}_macro"] = math.exp(min(self.macro, 50.0))
        return out


class Evaluator:
    def __init__(
        self,
        packed: PackedDomains,
        batch_size: int = 32,
        bf16: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.packed = packed
        self.names = packed.names
        self.batch_size = batch_size
        self.bf16 = bf16
        dom = np.repeat(np.arange(len(packed.names)), packed.num_sequences)
        seq = (
            np.concatenate([np.arange(n) for n in packed.num_sequences])
            if len(dom)
            else np.zeros(0, np.int64)
        )
        self.dom, self.seq = dom[rank::world_size], seq[rank::world_size]
        self.distributed = world_size > 1

    @torch.no_grad()
    def __call__(self, model: torch.nn.Module) -> EvalResult:
        was_training = model.training
        model.eval()
        m = len(self.names)
        sums, counts = torch.zeros(m, dtype=torch.float64), torch.zeros(m, dtype=torch.float64)
        for i in range(0, len(self.dom), self.batch_size):
            dom, seq = self.dom[i : i + self.batch_size], self.seq[i : i + self.batch_size]
            batch = torch.from_numpy(self.packed.gather(dom, seq))
            targets, valid = self.packed.targets(batch, dom, seq)
            loss_BT = per_token_loss(model, batch[:, :-1], targets, self.bf16)
            s, c = domain_sums(loss_BT, torch.from_numpy(dom), m, valid)
            sums += s
            counts += c
        if self.distributed:
            torch.distributed.all_reduce(sums)
            torch.distributed.all_reduce(counts)
        model.train(was_training)
        loss = np.where(counts.numpy() > 0, sums.numpy() / np.maximum(counts.numpy(), 1), np.nan)
        return EvalResult(
            self.names, loss, counts.numpy(), self.packed.split_tokens.astype(np.float64)
        )
