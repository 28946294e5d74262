"""domix.hf.MixtureTrainer: online mixing methods inside transformers.Trainer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("accelerate")  # transformers.Trainer needs it (domix[hf])
from transformers import Trainer, TrainingArguments  # noqa: E402

from conftest import micro_run_config  # noqa: E402
from domix.hf import ExampleSource, MixtureCallback, MixtureDataset, MixtureTrainer, PackedSource  # noqa: E402
from domix.run import prepare_data, train  # noqa: E402
from domix.train import checkpoint  # noqa: E402
from domix.train.loop import optimizer_and_schedule  # noqa: E402

PARAMS = {"rnb": {"round_steps": 2}, "odm": {}}


def hf_args(out, cfg, **kw):
    t = cfg.train
    return TrainingArguments(output_dir=str(out), max_steps=t.steps, per_device_train_batch_size=t.batch_size,
                             max_grad_norm=t.grad_clip, report_to=[], use_cpu=True, save_strategy="no",
                             disable_tqdm=True, logging_steps=t.steps, seed=t.seed, **kw)


def hf_run(cfg, out, method, **kw):
    """The run ``cfg`` describes, trained by MixtureTrainer with domix's optimizer and schedule."""
    data = prepare_data(cfg)
    model = cfg.model.build(data.tokenizer.vocab_size, seed=cfg.train.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    dataset = MixtureDataset(PackedSource.from_run(data), cfg.train.batch_size, method, PARAMS[method],
                             seed=cfg.train.seed)
    args = hf_args(out, cfg, **kw)
    steps = args.max_steps
    trainer = MixtureTrainer(model=model, args=args, train_dataset=dataset,
                             optimizers=optimizer_and_schedule(params, cfg.train, steps))
    trainer.train()
    return trainer, model, json.loads((out / "mixing.json").read_text())


@pytest.mark.parametrize("method", ["rnb", "odm"])
def test_online_method_matches_domix_loop(demo_corpus, tmp_path, method):
    """Same data, seed, model, optimizer and schedule: the Trainer run and domix's own loop give the
    same mixture at every update (R&B: every 2 steps from the split LM-head gradient; ODM: every step
    from the per-domain training loss, uniform while its exploration rate is 1/m) and the same final model."""
    cfg = micro_run_config(tmp_path / "domix", steps=12, batch_size=4).merge(
        [f"mixing.method={method}", f"mixing.params={json.dumps(PARAMS[method])}"])
    train(cfg)
    ours = json.loads((tmp_path / "domix" / "mixing.json").read_text())
    trainer, model, theirs = hf_run(cfg, tmp_path / "hf", method)

    assert [h["step"] for h in theirs["history"]] == [h["step"] for h in ours["history"]]
    assert len(ours["history"]) >= 4
    w_ours, w_hf = (np.array([h["weights"] for h in x["history"]]) for x in (ours, theirs))
    assert np.abs(w_ours[-1] - w_ours[0]).max() > 1e-3  # the weights moved
    np.testing.assert_allclose(w_hf, w_ours, atol=1e-6)
    state = checkpoint.load_checkpoint(checkpoint.latest_checkpoint(tmp_path / "domix"))["model"]
    for name, p in model.state_dict().items():
        torch.testing.assert_close(p, state[name], atol=1e-5, rtol=1e-5, msg=name)
    logged = [r for r in trainer.state.log_history if any(k.startswith("mix/weight/") for k in r)]
    assert len(logged) == len(theirs["history"])


def test_gradient_accumulation(demo_corpus, tmp_path):
    """Two micro-batches per step, each drawn with the step's weights; R&B's rounds see both."""
    cfg = micro_run_config(tmp_path / "cfg", steps=4, batch_size=4)
    trainer, _, mixing = hf_run(cfg, tmp_path / "hf", "rnb", gradient_accumulation_steps=2)
    assert trainer.train_dataset.sampler.draws.sum() == 4 * 2 * 4
    rounds = trainer.mixing.method.diagnostics()["rounds"]
    assert rounds and sum(rounds[0]["counts"]) == 2 * 2 * 4  # examples in a round: K x GA x B
    w = np.array([h["weights"] for h in mixing["history"]])
    assert np.isfinite(w).all() and np.allclose(w.sum(1), 1) and np.abs(w[-1] - w[0]).max() > 1e-3
    assert trainer.state.log_history[-1]["train_loss"] > 0


def test_what_it_cannot_follow(demo_corpus, tmp_path):
    cfg = micro_run_config(tmp_path / "cfg", steps=2, batch_size=4)
    data = prepare_data(cfg)
    model = cfg.model.build(data.tokenizer.vocab_size)
    online = MixtureDataset(PackedSource.from_run(data), 4, "rnb")
    with pytest.raises(ValueError, match="'rnb' is an online method.*MixtureTrainer"):
        Trainer(model=model, args=hf_args(tmp_path, cfg), train_dataset=online,
                callbacks=[MixtureCallback(online)]).train()
    with pytest.raises(ValueError, match="per_device_train_batch_size is 4 but the MixtureDataset draws batches of 8"):
        MixtureTrainer(model=model, args=hf_args(tmp_path, cfg), train_dataset=MixtureDataset(
            PackedSource.from_run(data), 8, "rnb"))
    rows = [{"input_ids": [1, 2], "domain": "a"}]
    with pytest.raises(TypeError, match="packed sequences"):
        MixtureTrainer(model=model, args=hf_args(tmp_path, cfg), train_dataset=MixtureDataset(ExampleSource(rows), 4))
    doge = MixtureDataset(PackedSource.from_run(data), 4, "doge")
    trainer = MixtureTrainer(model=model, args=hf_args(tmp_path, cfg), train_dataset=doge)
    with pytest.raises(NotImplementedError, match="grad_alignment .* replace the backward pass"):
        trainer.train()
