"""Train a causal LM with Hugging Face ``transformers.Trainer`` on domix's demo corpus, its batches
drawn by domix's mixture sampler; then domix's per-domain validation loss.

    python examples/hf_trainer.py                                  # gpt2-small preset, stratified, 200 steps
    python examples/hf_trainer.py --method proportional --steps 50
    python examples/hf_trainer.py --method rnb --params '{"round_steps": 20}'   # online: MixtureTrainer
    python examples/hf_trainer.py --preset micro --max-docs-per-domain 120 --steps 8   # seconds

Copy it and swap in your own model, ``TrainingArguments`` and data: ``PackedSource`` reads domix's
packed sequences (built here from a run config), ``ExampleSource`` any ``datasets.Dataset`` or list
of tokenized examples with a domain column.
"""

from __future__ import annotations

import argparse
import json

import torch
from transformers import Trainer, TrainingArguments

from domix.hf import MixtureCallback, MixtureDataset, MixtureTrainer, PackedSource
from domix.run import RunConfig, prepare_data
from domix.train.evaluate import Evaluator


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--method", default="stratified", help="any registered method (domix methods)")
    ap.add_argument("--params", default="{}", help="the method's parameters as JSON")
    ap.add_argument("--preset", default="gpt2-small")
    ap.add_argument("--max-docs-per-domain", type=int, default=None, help="a capped slice of the corpus")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/hf-trainer")
    args = ap.parse_args(argv)
    torch.set_flush_denormal(True)

    # domix's data: the demo corpus, its tokenizer, sequences packed per domain
    cfg = RunConfig.from_dict({
        "data": {"corpus": "demo", "max_docs_per_domain": args.max_docs_per_domain},
        "model": {"preset": args.preset},
        "train": {"progress": False, "eval_tokens_per_domain": 8192},
    })
    data = prepare_data(cfg)
    dataset = MixtureDataset(PackedSource.from_run(data), args.batch_size, method=args.method,
                             params=json.loads(args.params), seed=args.seed)
    print("mixture:", ", ".join(f"{n} {w:.3f}" for n, w in zip(dataset.names, dataset.mixture.weights)))

    # the Trainer's own model, optimizer, schedule and loop
    model = cfg.model.build(data.tokenizer.vocab_size, seed=args.seed)
    training = TrainingArguments(
        output_dir=args.out, max_steps=args.steps, per_device_train_batch_size=args.batch_size,
        learning_rate=2e-3, lr_scheduler_type="cosine", warmup_steps=min(50, args.steps // 10),
        weight_decay=0.1, adam_beta2=0.95, max_grad_norm=1.0, logging_steps=max(1, args.steps // 10),
        save_strategy="no", report_to=[], use_cpu=True, seed=args.seed, dataloader_num_workers=0,
    )
    if dataset.method.static:  # fixed weights: the plain Trainer, the callback checks it follows them
        trainer = Trainer(model=model, args=training, train_dataset=dataset, callbacks=[MixtureCallback(dataset)])
    else:  # weights from training signals: the Trainer with domix's draws and loss (mixing.json in --out)
        trainer = MixtureTrainer(model=model, args=training, train_dataset=dataset)
    trainer.train()
    print("final mixture:", ", ".join(f"{n} {w:.3f}" for n, w in zip(dataset.names, dataset.mixture.weights)))

    # domix's evaluation: mean token loss per original domain on held-out sequences
    result = Evaluator(data.eval, batch_size=32, bf16=False)(model)
    losses = dict(zip(result.names, result.loss.tolist()))
    print("validation loss:", ", ".join(f"{n} {v:.3f}" for n, v in losses.items()), f"(macro {result.macro:.3f})")
    return losses


if __name__ == "__main__":
    main()
