"""``MixtureCallback``: checks at the start of ``Trainer.train`` that the Trainer draws its batches the
way domix's sampler means them.

What it refuses, before the first step (each would train on another mixture than the one asked for):
an online method (it needs ``MixtureTrainer``), a train dataset other than the callback's ``MixtureDataset`` (e.g. a map-style dataset, for which
the Trainer would bring its own random sampler), a per-device batch size other than the dataset's
(batches would straddle draws), DataLoader worker processes (each would replay the same stream),
and several processes (not supported yet: every rank would draw the same batches).
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from .dataset import MixtureDataset


class MixtureCallback(TrainerCallback):
    def __init__(self, dataset: MixtureDataset) -> None:
        self.dataset = dataset

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs: Any) -> None:
        ds = self.dataset
        problems = []
        found = getattr(train_dataloader, "dataset", None)
        if found is not ds:
            problems.append(f"the Trainer's train_dataset is a {type(found).__name__}, not this callback's "
                            "MixtureDataset: pass the same object as train_dataset")
        if not ds.method.static:
            problems.append(f"'{ds.method_name}' is an online method: it reads signals from the training step, "
                            "which a plain Trainer does not give it; use domix.hf.MixtureTrainer")
        if args.per_device_train_batch_size != ds.batch_size:
            problems.append(f"per_device_train_batch_size is {args.per_device_train_batch_size} but the "
                            f"MixtureDataset draws batches of {ds.batch_size}: make them equal")
        if args.dataloader_num_workers:
            problems.append(f"dataloader_num_workers is {args.dataloader_num_workers}: set it to 0 "
                            "(one sampler draws the batches in order)")
        if args.world_size > 1:
            problems.append(f"{args.world_size} processes: domix.hf does not split draws across ranks yet")
        if problems:
            raise ValueError("domix cannot follow this Trainer:\n  - " + "\n  - ".join(problems))
