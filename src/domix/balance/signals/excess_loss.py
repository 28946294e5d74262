"""``excess_loss``: per-domain excess loss of the model over a frozen reference model (DoReMi).

On every training step the reference model (a finished run's newest checkpoint, same architecture)
runs one forward pass over the step's own tokens (``trainer.batch_BT``), in ``no_grad`` and eval
mode. With l the training model's per-token loss (from the normal forward) and l_ref the
reference's, the collector sums, per domain i over the held steps,

    excess_i = sum over tokens t of domain i of max(l_t - l_ref_t, 0)      tokens_i = their count

(the per-token clipped excess loss of DoReMi, Xie et al. 2023, Alg. 1). ``value()`` returns
``{"excess": [m], "tokens": [m]}`` summed over data-parallel ranks. Cost: one extra forward pass
per training step (``forward_passes``, ``forward_tokens`` in the run's extra compute), no backward.

Settings: ``mixing.signals.excess_loss.reference`` = the reference run's ``out_dir`` (its newest
checkpoint is used) or a checkpoint file; ``domix mix doremi`` sets it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ...config import Config, ConfigError
from ...train import checkpoint as ckpt
from ...train.evaluate import domain_sums, per_token_loss
from . import SIGNALS, Signal, all_reduce_


@dataclass
class ExcessLossConfig(Config):
    reference: str = ""  # the reference run's out_dir, or one of its checkpoint files

    def validate(self) -> None:
        if not self.reference:
            raise ConfigError(
                "mixing.signals.excess_loss.reference: give the reference run's out_dir "
                "(domix mix doremi sets it)"
            )


def load_reference(reference: str | Path, like: torch.nn.Module) -> torch.nn.Module:
    """A frozen copy of ``like`` with the weights of a finished run (out_dir or checkpoint file)."""
    path = Path(reference)
    if path.is_dir():
        found = ckpt.latest_checkpoint(path)
        if found is None:
            raise FileNotFoundError(f"no checkpoint in the reference run {path}: train it first")
        path = found
    if not path.exists():
        raise FileNotFoundError(f"reference checkpoint {path} does not exist")
    ref = copy.deepcopy(like)
    try:
        ref.load_state_dict(ckpt.load_checkpoint(path)["model"])
    except RuntimeError as e:
        raise RuntimeError(f"the reference {path} is not the same model as this run's: {e}") from e
    ref.eval().requires_grad_(False)
    return ref


@SIGNALS.register("excess_loss")
class ExcessLoss(Signal):
    Config = ExcessLossConfig
    masked_loss = True

    def __init__(self, config: ExcessLossConfig, domains, trainer) -> None:
        super().__init__(config, domains, trainer)
        self.m = len(domains)
        self.ref: torch.nn.Module | None = load_reference(config.reference, trainer.model)
        self.reset()

    def on_loss(self, trainer, loss_BT: torch.Tensor, dom_B: torch.Tensor) -> None:
        batch_BT = trainer.batch_BT
        with torch.no_grad():
            ref_BT = per_token_loss(self.ref, batch_BT[:, :-1], trainer.targets_BT, trainer.cfg.bf16)
        excess_BT = (loss_BT.detach().float() - ref_BT).clamp_(min=0.0)  # 0 where the target is ignored
        sums, counts = domain_sums(excess_BT, dom_B, self.m, trainer.valid_BT)
        self.excess_M += sums
        self.tokens_M += counts
        self.extra["forward_passes"] += 1
        self.extra["forward_tokens"] += int(ref_BT.numel())

    def value(self, trainer) -> Any:
        both = all_reduce_(torch.stack([self.excess_M, self.tokens_M]))
        return {"excess": both[0].numpy().copy(), "tokens": both[1].numpy().copy()}

    def reset(self) -> None:
        self.excess_M = torch.zeros(self.m, dtype=torch.float64)
        self.tokens_M = torch.zeros(self.m, dtype=torch.float64)

    def close(self) -> None:
        self.ref = None

    def state_dict(self) -> dict[str, Any]:
        return {"excess": self.excess_M.clone(), "tokens": self.tokens_M.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.excess_M = state["excess"].clone()
        self.tokens_M = state["tokens"].clone()
