"""One rank of a MixtureTrainer run under torchrun (test_hf_online.py starts two):
    python -m torch.distributed.run --standalone --nproc_per_node 2 hf_ranks_job.py <out> <steps> <batch>
Writes <out>/rank<r>.json: the weights the rank's sampler ends with, and the mixture's history."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: conftest's run config

from transformers import TrainingArguments  # noqa: E402

from conftest import micro_run_config  # noqa: E402
from domix.hf import MixtureDataset, MixtureTrainer, PackedSource  # noqa: E402
from domix.run import prepare_data  # noqa: E402
from domix.train.loop import optimizer_and_schedule  # noqa: E402


def main(out: str, steps: int, batch: int) -> None:
    cfg = micro_run_config(Path(out) / "cfg", steps=steps, batch_size=batch)
    args = TrainingArguments(output_dir=out, max_steps=steps, per_device_train_batch_size=batch, use_cpu=True,
                             ddp_backend="gloo", report_to=[], save_strategy="no", disable_tqdm=True,
                             max_grad_norm=cfg.train.grad_clip, seed=0, ddp_find_unused_parameters=False)
    data = prepare_data(cfg)
    model = cfg.model.build(data.tokenizer.vocab_size, seed=0)
    dataset = MixtureDataset(PackedSource.from_run(data), batch, "rnb", {"round_steps": 2}, seed=0)
    params = [p for p in model.parameters() if p.requires_grad]
    trainer = MixtureTrainer(model=model, args=args, train_dataset=dataset,
                             optimizers=optimizer_and_schedule(params, cfg.train, steps))
    trainer.train()
    history = [w.tolist() for _, w in trainer.mixing.history]
    Path(out, f"rank{args.process_index}.json").write_text(json.dumps(
        {"weights": dataset.sampler.weights.tolist(), "history": history, "world": args.world_size}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
