"""The training loop: AdamW, warm-up + cosine, clipping, optional bf16 autocast, per-domain losses.

The loop knows nothing about mixing methods: a ``MixingCallback`` sets the sampler's weights.
Resuming from a checkpoint reproduces the uninterrupted run exactly (same batches, same weights,
same metrics), and is refused when the data fingerprints differ.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import faults
from ..config import Config, ConfigError
from ..data.packed import PackedDomains
from ..data.records import RecordDomains
from ..data.sampler import MixtureSampler
from . import checkpoint as ckpt
from .callbacks import Callback, StepOutput
from .evaluate import EvalResult, Evaluator, domain_sums, per_token_loss
from .metrics import MetricsSink


@dataclass
class TrainConfig(Config):
    steps: int = 1000
    tokens: int | None = None  # total training tokens; when set, overrides steps
    batch_size: int = 16  # sequences per rank per step
    lr: float = 2e-3
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 50
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    bf16: bool = False  # bf16 autocast on CPU (measured slower than fp32 at small sizes here)
    seed: int = 0  # data order, the model's init and torch's global RNG (dropout): seed + rank
    eval_every: int = 100
    eval_tokens_per_domain: int = 16384
    eval_batch_size: int = 32
    log_every: int = 10
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    progress: bool = True
    threads: int | None = None  # torch intra-op threads; default: torch's choice

    def validate(self) -> None:
        for k in ("steps", "batch_size", "eval_every", "log_every", "checkpoint_every"):
            if getattr(self, k) <= 0:
                raise ConfigError(f"train.{k} must be positive")
        if self.lr <= 0:
            raise ConfigError("train.lr must be positive")

    def total_steps(self, context_length: int, world_size: int = 1) -> int:
        if self.tokens is None:
            return self.steps
        return max(1, math.ceil(self.tokens / (self.batch_size * context_length * world_size)))


def lr_lambda(step: int, warmup: int, total: int, min_ratio: float) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def optimizer_and_schedule(
    params: list[torch.nn.Parameter], cfg: TrainConfig, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (weight decay on matrices only) and linear warm-up + cosine decay to lr * min_lr_ratio."""
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ],
        lr=cfg.lr,
        betas=(cfg.beta1, cfg.beta2),
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_lambda(s, cfg.warmup_steps, total_steps, cfg.min_lr_ratio)
    )
    return optimizer, scheduler


def objective(loss_BT: torch.Tensor, dom_B: torch.Tensor, loss_weights: torch.Tensor | None, m: int,
              valid_BT: torch.Tensor | None = None) -> torch.Tensor:
    """Token mean, or sum_d w_d * (mean token loss of domain d in the batch) with loss weights.
    ``valid_BT``: the targets that count (prompt/response records: the responses'), None = all."""
    if valid_BT is not None:
        n_B = valid_BT.sum(1).to(loss_BT.dtype)
        if loss_weights is None:
            return loss_BT.sum() / n_B.sum().clamp(min=1)
        sum_M = torch.zeros(m, dtype=loss_BT.dtype).index_add_(0, dom_B, loss_BT.sum(1))
        n_M = torch.zeros(m, dtype=loss_BT.dtype).index_add_(0, dom_B, n_B).clamp(min=1)
        return (loss_weights.to(loss_BT.dtype) * sum_M / n_M).sum()
    if loss_weights is None:
        return loss_BT.mean()
    count_M = torch.bincount(dom_B, minlength=m).clamp(min=1)
    mean_M = torch.zeros(m, dtype=loss_BT.dtype).index_add_(0, dom_B, loss_BT.mean(1)) / count_M
    return (loss_weights.to(loss_BT.dtype) * mean_M).sum()


class Trainer:
    def __init__(
        self,
        cfg: TrainConfig,
        model: torch.nn.Module,
        train: PackedDomains | RecordDomains,
        sampler: MixtureSampler,
        out_dir: str | Path,
        evaluator: Evaluator | None = None,
        callbacks: list[Callback] | None = None,
        fingerprints: dict[str, str] | None = None,
    ) -> None:
        torch.set_flush_denormal(True)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.cfg, self.train, self.sampler, self.evaluator = cfg, train, sampler, evaluator
        self.out_dir = Path(out_dir)
        self.callbacks = callbacks or []
        self.fingerprints = fingerprints or {}
        self.rank, self.world_size = sampler.rank, sampler.world_size
        self.distributed = self.world_size > 1
        self.model = model
        if self.distributed:
            model = torch.nn.parallel.DistributedDataParallel(model)
        self.forward_model = model
        self.context_length = train.context_length
        self.total_steps = cfg.total_steps(self.context_length, self.world_size)
        self.m = len(train.names)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer, self.scheduler = optimizer_and_schedule(self.params, cfg, self.total_steps)
        self.metrics = MetricsSink(self.out_dir / "metrics.jsonl", enabled=self.rank == 0)
        self.loss_weights: torch.Tensor | None = None  # set by a mixing callback; None = token mean
        self.domain_evaluator: Evaluator | None = None  # validation loss of the training domains
        self.step = 0
        self.last_eval: EvalResult | None = None
        self.batch_BT: torch.Tensor | None = None
        self.targets_BT: torch.Tensor | None = None  # the step's targets [B, T] (IGNORE: not trained)
        self.valid_BT: torch.Tensor | None = None  # which targets count; None: all (packed streams)
        self.wall_before = 0.0  # training seconds of earlier sessions of this run (resume)
        self._clock = time.perf_counter()

    @property
    def wall_s(self) -> float:
        """Seconds this run has spent in ``fit`` (training, evaluation, checkpoints), over resumes."""
        return self.wall_before + time.perf_counter() - self._clock

    def objective(self, loss_BT: torch.Tensor, dom_B: torch.Tensor) -> torch.Tensor:
        return objective(loss_BT, dom_B, self.loss_weights, self.m, self.valid_BT)

    def train_step(self, dom_B: np.ndarray, seq_B: np.ndarray) -> StepOutput:
        batch_BT = torch.from_numpy(self.train.gather(dom_B, seq_B))
        self.batch_BT = batch_BT  # the step's tokens [B, T+1], for signals that need them (DoReMi)
        self.targets_BT, self.valid_BT = self.train.targets(batch_BT, dom_B, seq_B)  # records: masked
        dom = torch.from_numpy(dom_B)
        for cb in self.callbacks:
            cb.on_batch(self, dom)
        loss_BT = per_token_loss(self.forward_model, batch_BT[:, :-1], self.targets_BT, self.cfg.bf16)
        loss = self.objective(loss_BT, dom)
        if not torch.isfinite(loss):  # stop before the model or optimizer sees it; checkpoints are intact
            raise self._diverged(loss, loss_BT, dom_B)
        for cb in self.callbacks:
            cb.on_loss(self, loss_BT, dom)
        if not any(cb.backward(self, loss, loss_BT, dom) for cb in self.callbacks):
            loss.backward()
        for cb in self.callbacks:
            cb.on_backward(self)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        sums, counts = domain_sums(loss_BT, dom, self.m, self.valid_BT)
        if self.distributed:
            torch.distributed.all_reduce(sums)
            torch.distributed.all_reduce(counts)
        return StepOutput(loss.item(), sums, counts, float(grad_norm), lr)

    def _diverged(self, loss: torch.Tensor, loss_BT: torch.Tensor, dom_B: np.ndarray) -> FloatingPointError:
        bad = sorted({self.train.names[d] for d in dom_B[~torch.isfinite(loss_BT.detach()).all(1).numpy()]})
        return FloatingPointError(
            f"step {self.step + 1}: the training objective is {float(loss.detach())} (non-finite token losses in the domains "
            f"{', '.join(bad) or 'none: the loss weights'}); the model was not updated at this step. The newest "
            f"checkpoint in {ckpt.checkpoint_dir(self.out_dir)} is intact: resume from it with --resume and a "
            "lower train.lr, or check the data")

    def fit(self, resume: bool = False) -> EvalResult | None:
        if resume:
            self._resume()
        if self.step == 0:  # a fresh run: torch's global RNG (dropout) from the seed; resume restores it
            torch.manual_seed(self.cfg.seed + self.rank)
        self._clock = time.perf_counter()
        for cb in self.callbacks:
            cb.on_train_start(self)
        window = _Window(self.m)
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            desc="train",
            unit="step",
            disable=not (self.cfg.progress and self.rank == 0),
            mininterval=1.0,
            dynamic_ncols=True,
        )
        self.model.train()
        while self.step < self.total_steps:
            for cb in self.callbacks:
                cb.on_step_start(self, self.step)
            dom_B, seq_B = self.sampler.next(self.cfg.batch_size)
            out = self.train_step(dom_B, seq_B)
            self.step += 1
            faults.point("step")
            for cb in self.callbacks:
                cb.on_step_end(self, self.step, out)
            window.add(out)
            bar.update(1)
            logged = self.step % self.cfg.log_every == 0 or self.step == self.total_steps
            if logged:
                self.metrics.log(self.step, "train", window.metrics(self))
                bar.set_postfix(loss=f"{window.last_loss:.3f}", refresh=False)
            if self.evaluator and (
                self.step % self.cfg.eval_every == 0 or self.step == self.total_steps
            ):
                self.evaluate()
            if self.step % self.cfg.checkpoint_every == 0 or self.step == self.total_steps:
                self.save_checkpoint()
            if logged:  # a new window after eval and checkpoint, so throughput counts training only
                window = _Window(self.m)
        bar.close()
        for cb in self.callbacks:
            cb.on_train_end(self)
        self.metrics.close()
        return self.last_eval

    def evaluate(self) -> EvalResult:
        result = self.evaluator(self.model)
        self.last_eval = result
        self.metrics.log(self.step, "eval", result.metrics("val"))
        for cb in self.callbacks:
            cb.on_eval(self, self.step, result)
        return result

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "sampler": self.sampler.state_dict(),
            "callbacks": {cb.name: cb.state_dict() for cb in self.callbacks},
            "torch_rng": torch.get_rng_state(),
            "fingerprints": self.fingerprints,
            "total_steps": self.total_steps,
            "last_eval": None if self.last_eval is None else vars(self.last_eval),
            "metrics_records": self.metrics.records,
            "wall_s": self.wall_s,
        }

    def save_checkpoint(self) -> None:
        state = self.state_dict()  # on every rank: callbacks may reduce rank-local state
        if self.rank == 0:
            ckpt.save_checkpoint(self.out_dir, self.step, state, self.cfg.keep_checkpoints)
        if self.distributed:
            torch.distributed.barrier()

    def _resume(self) -> None:
        if self.rank == 0:  # what a killed run left half-done: partial writes, unpruned checkpoints
            for folder in (self.out_dir, ckpt.checkpoint_dir(self.out_dir)):
                for p in ckpt.remove_partial(folder):
                    print(f"removed {p}: a write the interrupted run did not finish", flush=True)
            ckpt.prune(self.out_dir, self.cfg.keep_checkpoints)
        if self.distributed:  # no rank looks for the newest checkpoint while rank 0 still prunes
            torch.distributed.barrier()
        path = ckpt.latest_checkpoint(self.out_dir)
        if path is None:
            if self.rank == 0:
                print(f"no checkpoint in {self.out_dir}: starting from scratch", flush=True)
            self.metrics.rewind(-1)
            return
        state = ckpt.load_checkpoint(path)
        changed = {
            k: (v, self.fingerprints.get(k))
            for k, v in state["fingerprints"].items()
            if self.fingerprints.get(k) != v
        }
        if changed:
            raise ckpt.ResumeError(
                f"refusing to resume {path}: the data changed since it was saved "
                f"({', '.join(changed)} fingerprints differ). Use a new out_dir."
            )
        if state["total_steps"] != self.total_steps:
            raise ckpt.ResumeError(
                f"refusing to resume {path}: it was for {state['total_steps']} steps, "
                f"this run has {self.total_steps} (the schedule would differ)"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.load_state_dict(state["sampler"])
        for cb in self.callbacks:
            if cb.name in state["callbacks"]:
                cb.load_state_dict(state["callbacks"][cb.name])
        torch.set_rng_state(state["torch_rng"])
        self.step = state["step"]
        self.wall_before = state.get("wall_s", 0.0)
        self.last_eval = EvalResult(**state["last_eval"]) if state.get("last_eval") else None
        self.metrics.rewind(self.step, state.get("metrics_records"))
        if self.rank == 0:
            print(f"resumed from {path} at step {self.step}", flush=True)


class _Window:
    """Training statistics between two log lines."""

    def __init__(self, m: int) -> None:
        self.sums, self.counts = (
            torch.zeros(m, dtype=torch.float64),
            torch.zeros(m, dtype=torch.float64),
        )
        self.objective, self.steps, self.grad_norm, self.t0 = 0.0, 0, 0.0, time.perf_counter()
        self.last_loss = float("nan")

    def add(self, out: StepOutput) -> None:
        self.sums += out.domain_loss_sum
        self.counts += out.domain_tokens
        self.objective += out.loss
        self.grad_norm += out.grad_norm
        self.steps += 1
        self.lr = out.lr

    def metrics(self, trainer: Trainer) -> dict[str, float]:
        tokens = float(self.counts.sum())
        self.last_loss = float(self.sums.sum() / max(tokens, 1))
        out = {
            "loss/train": self.last_loss,
            "loss/objective": self.objective / max(self.steps, 1),
            "lr": self.lr,
            "grad_norm": self.grad_norm / max(self.steps, 1),
            "tokens": trainer.step
            * trainer.cfg.batch_size
            * trainer.context_length
            * trainer.world_size,
            "perf/tokens_per_s": tokens / max(time.perf_counter() - self.t0, 1e-9),
        }
        if trainer.m <= 256:  # per-domain lines stay readable; larger sets go to the summary
            for d, name in enumerate(trainer.train.names):
                if self.counts[d] > 0:
                    out[f"loss/train/{name}"] = float(self.sums[d] / self.counts[d])
        return out
