"""``MixtureTrainer``: a ``transformers.Trainer`` under any registered mixing method, online ones too.

What it changes in the Trainer, and nothing else (model, optimizer, schedule, clipping, gradient
accumulation, logging and evaluation stay the Trainer's):

- **When a batch is drawn.** The Trainer's loader (accelerate's) reads one batch ahead, and the
  Trainer fetches all micro-batches of an update step before the step begins, so a batch drawn by
  the loader would come from the weights of an earlier step. Here the loader yields only tickets
  and ``compute_loss`` draws the micro-batch from the sampler when it trains on it, as domix's own
  loop does: weights set at the start of step t govern exactly step t's micro-batches.
- **The loss.** ``compute_loss`` computes domix's per-token loss on the packed window (L inputs, L
  targets) and domix's objective (token mean, or per-domain loss weights when the method sets
  them), and hands the per-token losses to the method's signals. The Trainer divides it by the
  accumulation steps and runs the backward itself; the split LM-head gradient (R&B) and the
  per-sample gradient sketches (DoGraph) are captured inside that backward by the hooks the
  signals install on the output layer.
- **A callback** (``_Bridge``) runs domix's ``MixingCallback`` at the Trainer's events: its proposal
  at the start of training and of each update step, ``on_backward`` after every micro-batch's
  backward, the step's per-domain losses (summed over its micro-batches) at the end of each update
  step, and ``mixing.json`` (the weights over time) in ``output_dir`` at the end. Weight changes
  and a method's diagnostics are logged through ``Trainer.log`` (``mix/weight/<domain>``, ...).

**Checkpoints.** Every checkpoint the Trainer saves (``checkpoint-<step>/``) gets ``domix_mixing.pt``:
the sampler (its RNG and per-domain draw counts) and the method's whole state (weights, the round's
accumulated signals, history). ``train(resume_from_checkpoint=...)`` restores them with the Trainer's
own model, optimizer, scheduler and RNG state, so the resumed run continues exactly; a checkpoint
of other data (packed sequences' fingerprint) or without domix's file is refused.

With gradient accumulation a step's signals are the sums over its micro-batches (each drawn with
the step's weights), which is what one batch of the accumulated size would give, up to the draws.

**Ranks** (``torchrun``, ``accelerate launch``): each rank draws its share of every global batch
(``per_device_train_batch_size`` x ranks), the step's per-domain losses are summed over ranks and the
signals all-reduce their own sums, so every rank computes the same weights, the ones one process
would compute on the whole global batch.

Not supported yet (a clear error): signals that replace the backward pass (``grad_alignment``:
DoGE), data without packed sequences (``ExampleSource``).
A static mixture in a plain ``Trainer`` (``MixtureDataset`` + ``MixtureCallback``) resumes exactly
without any of this: the Trainer skips the batches already trained on, which replays the sampler.
"""

from __future__ import annotations

import math
import types
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

from .. import io
from ..balance.callback import MixingCallback
from ..balance.signals import Signal
from ..train.callbacks import StepOutput
from ..train.checkpoint import ResumeError
from ..train.evaluate import Evaluator, domain_sums, per_token_loss
from ..train.loop import objective
from .dataset import MixtureDataset, PackedSource

TICKET = "domix_draw"
STATE_FILE = "domix_mixing.pt"  # in each checkpoint-<step>/ folder: sampler and mixing method


class _Tickets(torch.utils.data.IterableDataset):
    """One ticket per micro-batch: the draw happens in ``compute_loss``."""

    def __iter__(self):
        i = 0
        while True:
            yield {TICKET: i}
            i += 1


class _Loop:
    """What domix's mixing callback and signals see of the Trainer (``train.callbacks.Loop``)."""

    def __init__(self, trainer: MixtureTrainer, dataset: MixtureDataset, validation: Evaluator | None,
                 rank: int, world_size: int) -> None:
        self.hf = trainer
        self.cfg = types.SimpleNamespace(bf16=bool(trainer.args.bf16), batch_size=dataset.batch_size)
        self.sampler = dataset.sampler
        self.train = dataset.source.packed
        self.context_length = self.train.context_length
        self.m = len(dataset.names)
        self.evaluator, self.domain_evaluator = None, validation
        self.rank, self.world_size, self.distributed = rank, world_size, world_size > 1
        self.out_dir = Path(trainer.args.output_dir)
        self.metrics = self  # .log(step, kind, metrics) goes to Trainer.log
        self.step, self.batch_BT, self.loss_weights = 0, None, None
        self.targets_BT = self.valid_BT = None
        self.wall_s = 0.0

    model = property(lambda self: self.hf.accelerator.unwrap_model(self.hf.model_wrapped))
    forward_model = property(lambda self: self.hf.model_wrapped)
    optimizer = property(lambda self: self.hf.optimizer)
    scheduler = property(lambda self: self.hf.lr_scheduler)

    def log(self, step: int, kind: str, metrics: dict[str, float]) -> None:
        self.hf.log(dict(metrics))


class _Bridge(TrainerCallback):
    """domix's MixingCallback at the Trainer's events (see the module docstring)."""

    def __init__(self, loop: _Loop, mixing: MixingCallback) -> None:
        self.loop, self.mixing = loop, mixing
        self._new_step()

    def _new_step(self) -> None:
        m = self.loop.m
        self.sums, self.counts = torch.zeros(m, dtype=torch.float64), torch.zeros(m, dtype=torch.float64)
        self.objective, self.batches = 0.0, 0

    def on_train_begin(self, args, state, control, **kwargs: Any) -> None:
        self.loop.step = state.global_step
        self.mixing.on_train_start(self.loop)

    def on_step_begin(self, args, state, control, **kwargs: Any) -> None:
        self.loop.step = state.global_step
        self.mixing.on_step_start(self.loop, state.global_step)
        self._new_step()

    def loss(self, model: torch.nn.Module) -> torch.Tensor:
        """One micro-batch: drawn now, with the step's weights; domix's per-token loss and objective."""
        unsupported = [n for n, s in self.mixing.signals.items() if type(s).backward is not Signal.backward]
        if unsupported:
            raise NotImplementedError(f"the signal(s) {', '.join(unsupported)} of mixing method "
                                      f"'{type(self.mixing.method).__name__}' replace the backward pass, which "
                                      "transformers.Trainer runs itself: use domix train for this method")
        loop = self.loop
        dom_B, seq_B = loop.sampler.next(loop.cfg.batch_size)
        loop.batch_BT = batch_BT = torch.from_numpy(loop.train.gather(dom_B, seq_B))
        loop.targets_BT, loop.valid_BT = loop.train.targets(batch_BT, dom_B, seq_B)
        dom = torch.from_numpy(dom_B)
        self.mixing.on_batch(loop, dom)
        loss_BT = per_token_loss(model, batch_BT[:, :-1], loop.targets_BT, loop.cfg.bf16)
        loss = objective(loss_BT, dom, loop.loss_weights, loop.m, loop.valid_BT)
        self.mixing.on_loss(loop, loss_BT, dom)
        sums, counts = domain_sums(loss_BT, dom, loop.m, loop.valid_BT)
        self.sums += sums
        self.counts += counts
        self.objective += float(loss.detach())
        self.batches += 1
        return loss

    def on_substep_end(self, args, state, control, **kwargs: Any) -> None:
        self.mixing.on_backward(self.loop)  # a micro-batch's backward is done (not the step's last)

    def on_pre_optimizer_step(self, args, state, control, **kwargs: Any) -> None:
        self.mixing.on_backward(self.loop)  # the step's last micro-batch

    def on_step_end(self, args, state, control, **kwargs: Any) -> None:
        self.loop.step = state.global_step
        lr = self.loop.scheduler.get_last_lr()[0] if self.loop.scheduler is not None else math.nan
        if self.loop.distributed:  # the step's per-domain losses over all ranks, as in domix's loop
            torch.distributed.all_reduce(self.sums)
            torch.distributed.all_reduce(self.counts)
        out = StepOutput(self.objective / max(self.batches, 1), self.sums, self.counts, math.nan, lr)
        self.mixing.on_step_end(self.loop, state.global_step, out)

    def on_train_end(self, args, state, control, **kwargs: Any) -> None:
        self.mixing.on_train_end(self.loop)

    def on_save(self, args, state, control, **kwargs: Any) -> None:
        """The Trainer has written checkpoint-<step>/: add domix's part (every rank computes it, since
        signals sum their rank-local state; rank 0 writes)."""
        saved = {"step": state.global_step, "sampler": self.loop.sampler.state_dict(),
                 "mixing": self.mixing.state_dict(), "fingerprint": self.loop.train.fingerprint}
        if self.loop.rank == 0:
            folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
            with io.atomic_path(folder / STATE_FILE) as tmp:
                torch.save(saved, tmp)

    def restore(self, folder: Path) -> None:
        """Before ``on_train_begin`` of a resumed run: the sampler and the method as they were saved."""
        path = folder / STATE_FILE
        if not path.exists():
            raise ResumeError(f"{folder} has no {STATE_FILE}: it was not written by MixtureTrainer, or its "
                              "save was interrupted; resume from an earlier checkpoint")
        saved = torch.load(path, map_location="cpu", weights_only=False)
        if saved["fingerprint"] != self.loop.train.fingerprint:
            raise ResumeError(f"refusing to resume {folder}: it was trained on other data "
                              f"(packed sequences {saved['fingerprint']}, this run {self.loop.train.fingerprint})")
        self.loop.sampler.load_state_dict(saved["sampler"])
        self.mixing.load_state_dict(saved["mixing"])  # applied by on_train_start


class MixtureTrainer(Trainer):
    """``Trainer(model, args, train_dataset=MixtureDataset(...), ...)`` plus ``domain_eval``: held-out
    sequences of the training domains for methods that read a validation loss (default: the
    dataset's ``PackedSource.validation``)."""

    loss_is_scaled_for_ga = False  # compute_loss returns a micro-batch mean: the Trainer divides it

    def __init__(self, *args: Any, domain_eval=None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ds = self.train_dataset
        if not isinstance(ds, MixtureDataset):
            raise TypeError(f"MixtureTrainer's train_dataset must be a domix.hf.MixtureDataset, not {type(ds).__name__}")
        if not isinstance(ds.source, PackedSource):
            raise TypeError("MixtureTrainer trains on domix's packed sequences (PackedSource); for other "
                            "examples use a plain Trainer with MixtureCallback and a static method")
        if self.args.per_device_train_batch_size != ds.batch_size:
            raise ValueError(f"per_device_train_batch_size is {self.args.per_device_train_batch_size} but the "
                             f"MixtureDataset draws batches of {ds.batch_size}: make them equal")
        rank, world = self.args.process_index, self.args.world_size
        ds.shard(rank, world)
        packed = domain_eval if domain_eval is not None else ds.source.validation
        validation = None if packed is None else Evaluator(packed, self.args.per_device_eval_batch_size,
                                                             bool(self.args.bf16), rank, world)
        self.mixing = MixingCallback(ds.method, ds.domains, ds.signals)
        self.bridge = _Bridge(_Loop(self, ds, validation, rank, world), self.mixing)
        self.add_callback(self.bridge)

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any):
        if resume_from_checkpoint is True:
            resume_from_checkpoint = get_last_checkpoint(self.args.output_dir)
            if resume_from_checkpoint is None:
                raise ValueError(f"no checkpoint found in output_dir {self.args.output_dir}")
        if resume_from_checkpoint:
            self.bridge.restore(Path(resume_from_checkpoint))
        return super().train(resume_from_checkpoint=resume_from_checkpoint or None, **kwargs)

    def get_train_dataloader(self) -> torch.utils.data.DataLoader:
        # every rank reads its own tickets (accelerate would read them on rank 0 and send them out)
        return torch.utils.data.DataLoader(_Tickets(), batch_size=1)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if TICKET not in inputs:  # evaluation batches: the Trainer's own loss
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        return self.bridge.loss(model)

    def floating_point_ops(self, inputs: dict[str, Any]) -> int:
        if TICKET not in inputs:
            return super().floating_point_ops(inputs)
        tokens = self.bridge.loop.cfg.batch_size * self.bridge.loop.context_length
        count = getattr(self.model, "num_parameters", None)
        return 6 * tokens * count(exclude_embeddings=True) if count else 0

