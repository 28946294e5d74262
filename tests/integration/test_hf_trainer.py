"""domix.hf: a transformers.Trainer run draws its batches from domix's MixtureSampler."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("accelerate")  # transformers.Trainer needs it (domix[hf])
from transformers import Trainer, TrainingArguments  # noqa: E402

from conftest import DEMO_CAP, micro_run_config  # noqa: E402
from domix.data.sampler import MixtureSampler  # noqa: E402
from domix.hf import ExampleSource, MixtureCallback, MixtureDataset, PackedSource  # noqa: E402
from domix.run import prepare_data  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data(demo_corpus, tmp_path_factory):
    return prepare_data(micro_run_config(tmp_path_factory.mktemp("hf")))


def trainer_args(out, batch_size, steps, **kw):
    return TrainingArguments(output_dir=str(out), max_steps=steps, per_device_train_batch_size=batch_size,
                             learning_rate=3e-3, report_to=[], use_cpu=True, save_strategy="no",
                             disable_tqdm=True, logging_steps=steps, **kw)


class Recorder:
    """A data collator that keeps every batch's domains and tokens (and leaves the domain out)."""

    def __init__(self):
        self.domains, self.inputs = [], []

    def __call__(self, features):
        self.domains.append(np.array([f.pop("domain") for f in features]))
        batch = {k: torch.stack([f[k] for f in features]) for k in features[0]}
        self.inputs.append(batch["input_ids"])
        return batch


@pytest.mark.parametrize("method", ["stratified", "proportional"])
def test_trainer_draws_the_sampler_batches(data, tmp_path, method):
    """Every batch the model trains on is one draw of a MixtureSampler with the mixture's weights:
    the same domains and the same sequences, so per batch each domain gets floor or ceil of B x w."""
    B, steps, seed = 10, 6, 3
    ds = MixtureDataset(PackedSource(data.train), B, method=method, seed=seed)
    tokens = data.train.tokens_per_domain
    expected_w = np.full(5, 0.2) if method == "stratified" else tokens / tokens.sum()
    np.testing.assert_allclose(ds.mixture.weights, expected_w)
    model = micro_run_config(tmp_path).model.build(data.tokenizer.vocab_size)
    rec = Recorder()
    args = trainer_args(tmp_path, B, steps, remove_unused_columns=False)
    Trainer(model=model, args=args, train_dataset=ds, data_collator=rec, callbacks=[MixtureCallback(ds)]).train()

    assert len(rec.domains) >= steps  # (the loader may collate one batch ahead)
    reference = MixtureSampler(data.train.num_sequences, expected_w, seed=seed)
    for dom, inputs in zip(rec.domains[:steps], rec.inputs[:steps]):
        want_dom, want_seq = reference.next(B)
        np.testing.assert_array_equal(dom, want_dom)
        np.testing.assert_array_equal(inputs.numpy(), data.train.gather(want_dom, want_seq)[:, :-1])
        counts = np.bincount(dom, minlength=5)
        assert np.all(counts >= np.floor(B * expected_w)) and np.all(counts <= np.ceil(B * expected_w))


def test_default_collator_drops_the_domain_and_trains(data, tmp_path):
    """The plain Trainer path (remove_unused_columns, default collator): the domain column never
    reaches the model, and the loss goes down."""
    ds = MixtureDataset(PackedSource(data.train), 8, method="stratified")
    model = micro_run_config(tmp_path).model.build(data.tokenizer.vocab_size)
    trainer = Trainer(model=model, args=trainer_args(tmp_path, 8, 12, logging_first_step=True),
                      train_dataset=ds, callbacks=[MixtureCallback(ds)])
    trainer.train()
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    assert losses[-1] < losses[0]


def test_example_sources_with_a_domain_column(tmp_path):
    """A list of tokenized examples with a domain column: the stratified draws are balanced, and an
    example comes back unchanged plus its domain index."""
    rows = [{"input_ids": torch.full((4,), i), "labels": torch.full((4,), i), "topic": t}
            for i, t in enumerate(["a"] * 30 + ["b"] * 5 + ["c"] * 10)]
    source = ExampleSource(rows, domain_column="topic")
    assert source.names == ("a", "b", "c") and source.num_sequences.tolist() == [30, 5, 10]
    ds = MixtureDataset(source, 6, method="proportional")
    np.testing.assert_allclose(ds.mixture.weights, [30 / 45, 5 / 45, 10 / 45])
    ds = MixtureDataset(source, 6, method="stratified")
    stream = iter(ds)
    batch = [next(stream) for _ in range(6)]
    assert [ex["domain"] for ex in batch] == [0, 0, 1, 1, 2, 2]
    for ex in batch:
        assert rows[int(ex["input_ids"][0])]["topic"] == source.names[ex["domain"]]


def test_bad_setups_are_refused_at_start(data, tmp_path):
    ds = MixtureDataset(PackedSource(data.train), 8)
    model = micro_run_config(tmp_path).model.build(data.tokenizer.vocab_size)
    cases = {
        "per_device_train_batch_size is 4": dict(args=trainer_args(tmp_path, 4, 2), train_dataset=ds),
        "train_dataset is a list": dict(args=trainer_args(tmp_path, 8, 2), train_dataset=[{"input_ids": [1]}] * 8),
        "dataloader_num_workers is 2": dict(args=trainer_args(tmp_path, 8, 2, dataloader_num_workers=2),
                                            train_dataset=ds),
    }
    for message, kw in cases.items():
        trainer = Trainer(model=model, callbacks=[MixtureCallback(ds)], **kw)
        with pytest.raises(ValueError, match=message):
            trainer.train()
        assert trainer.state.global_step == 0


def test_bad_inputs_get_clear_errors(data):
    with pytest.raises(ValueError, match="example 1 has no 'domain' field"):
        ExampleSource([{"input_ids": [1], "domain": "a"}, {"input_ids": [2]}])
    with pytest.raises(ValueError, match="example 0 has no 'domain' value"):
        ExampleSource([{"input_ids": [1], "domain": None}])
    datasets = pytest.importorskip("datasets")
    table = datasets.Dataset.from_dict({"input_ids": [[1, 2], [3]], "category": ["x", "y"]})
    with pytest.raises(ValueError, match="no 'domain' column .*columns: input_ids, category"):
        ExampleSource(table)
    assert ExampleSource(table, domain_column="category").tokens.tolist() == [2.0, 1.0]


def test_the_example_script_runs(demo_corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["hf_trainer.py", "--preset", "micro", "--max-docs-per-domain",
                                      str(DEMO_CAP), "--steps", "4", "--method", "proportional",
                                      "--out", str(tmp_path / "out")])
    runpy.run_path(str(ROOT / "examples" / "hf_trainer.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "mixture: code" in out and "validation loss: code" in out
