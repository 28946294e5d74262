"""domix.hf.MixtureTrainer: online mixing methods inside transformers.Trainer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("accelerate")  # transformers.Trainer needs it (domix[hf])
from transformers import Trainer, TrainerCallback, TrainingArguments  # noqa: E402

from conftest import micro_run_config  # noqa: E402
from domix.hf import ExampleSource, MixtureCallback, MixtureDataset, MixtureTrainer, PackedSource  # noqa: E402
from domix.run import prepare_data, train  # noqa: E402
from domix.train import checkpoint  # noqa: E402
from domix.train.checkpoint import ResumeError  # noqa: E402
from domix.train.loop import optimizer_and_schedule  # noqa: E402

PARAMS = {"rnb": {"round_steps": 2}, "odm": {}}


def hf_args(out, cfg, **kw):
    t = cfg.train
    return TrainingArguments(**{
        "output_dir": str(out), "max_steps": t.steps, "per_device_train_batch_size": t.batch_size,
        "max_grad_norm": t.grad_clip, "report_to": [], "use_cpu": True, "save_strategy": "no",
        "disable_tqdm": True, "logging_steps": t.steps, "seed": t.seed, **kw})


def hf_trainer(cfg, out, method, callbacks=(), **kw):
    """The run ``cfg`` describes as a MixtureTrainer with domix's optimizer and schedule (fresh
    objects, as a new process would build them)."""
    data = prepare_data(cfg)
    model = cfg.model.build(data.tokenizer.vocab_size, seed=cfg.train.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    dataset = MixtureDataset(PackedSource.from_run(data), cfg.train.batch_size, method, PARAMS[method],
                             seed=cfg.train.seed)
    args = hf_args(out, cfg, **kw)
    return MixtureTrainer(model=model, args=args, train_dataset=dataset, callbacks=list(callbacks),
                          optimizers=optimizer_and_schedule(params, cfg.train, args.max_steps)), model


def hf_run(cfg, out, method, **kw):
    trainer, model = hf_trainer(cfg, out, method, **kw)
    trainer.train()
    return trainer, model, json.loads((out / "mixing.json").read_text())


class Crash(TrainerCallback):
    """Stops the run like a kill: an exception before step ``at`` + 1."""

    def __init__(self, at):
        self.at = at

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.at:
            raise KeyboardInterrupt


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


def test_resume_from_checkpoint_is_exact(demo_corpus, tmp_path):
    """Killed after step 6 (checkpoint at 4), resumed from the checkpoint by a fresh trainer: the same
    mixture history and the same final model as the uninterrupted run (R&B's round in progress at
    the checkpoint is saved with it)."""
    cfg = micro_run_config(tmp_path / "cfg", steps=8, batch_size=4)
    save = {"save_strategy": "steps", "save_steps": 4}
    _, whole, want = hf_run(cfg, tmp_path / "whole", "rnb", **save)
    trainer, _ = hf_trainer(cfg, tmp_path / "cut", "rnb", callbacks=[Crash(6)], **save)
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert (tmp_path / "cut" / "checkpoint-4" / "domix_mixing.pt").exists()
    trainer, resumed = hf_trainer(cfg, tmp_path / "cut", "rnb", **save)
    trainer.train(resume_from_checkpoint=True)
    got = json.loads((tmp_path / "cut" / "mixing.json").read_text())
    assert [h["step"] for h in got["history"]] == [h["step"] for h in want["history"]] == [0, 2, 4, 6]
    np.testing.assert_array_equal([h["weights"] for h in got["history"]], [h["weights"] for h in want["history"]])
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_resume_refuses_what_is_not_its_own(demo_corpus, tmp_path):
    cfg = micro_run_config(tmp_path / "cfg", steps=4, batch_size=4)
    hf_run(cfg, tmp_path / "run", "rnb", save_strategy="steps", save_steps=2)
    (tmp_path / "run" / "checkpoint-4" / "domix_mixing.pt").unlink()
    trainer, _ = hf_trainer(cfg, tmp_path / "run", "rnb")
    with pytest.raises(ResumeError, match="checkpoint-4 has no domix_mixing.pt"):
        trainer.train(resume_from_checkpoint=True)
    other = micro_run_config(tmp_path / "cfg", steps=4, batch_size=4).merge(["data.pack_seed=1"])
    trainer, _ = hf_trainer(other, tmp_path / "run", "rnb")
    with pytest.raises(ResumeError, match="trained on other data"):
        trainer.train(resume_from_checkpoint=str(tmp_path / "run" / "checkpoint-2"))


def test_static_mixture_in_a_plain_trainer_resumes_exactly(demo_corpus, tmp_path):
    """No domix state to save: the Trainer skips the batches already trained on, which replays the
    sampler of a fresh MixtureDataset."""
    cfg = micro_run_config(tmp_path / "cfg", steps=8, batch_size=4)
    data = prepare_data(cfg)

    def run(out, callbacks=(), resume=None):
        model = cfg.model.build(data.tokenizer.vocab_size, seed=0)
        ds = MixtureDataset(PackedSource(data.train), 4, "proportional")
        trainer = Trainer(model=model, args=hf_args(out, cfg, save_strategy="steps", save_steps=4),
                          train_dataset=ds, callbacks=[MixtureCallback(ds), *callbacks])
        trainer.train(resume_from_checkpoint=resume)
        return model

    whole = run(tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", [Crash(6)])
    resumed = run(tmp_path / "cut", resume=True)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


@pytest.mark.distributed
def test_two_ranks_under_torchrun_agree(demo_corpus, tmp_path):
    """2 gloo ranks x 2 sequences: both ranks hold the same R&B mixture at every update, the one a
    single process computes on the same global batches (4 sequences)."""
    cfg = micro_run_config(tmp_path / "cfg", steps=6, batch_size=4)
    prepare_data(cfg)  # the cache is built once here; the ranks only read it
    job = Path(__file__).with_name("hf_ranks_job.py")
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                    str(job), str(tmp_path / "ddp"), "6", "2"], check=True, env=os.environ | {"OMP_NUM_THREADS": "1"},
                   timeout=300)
    ranks = [json.loads((tmp_path / "ddp" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world"] == 2 and ranks[0]["history"] == ranks[1]["history"]
    assert len(ranks[0]["history"]) == 3 and not np.allclose(ranks[0]["weights"], 0.2)
    _, _, single = hf_run(cfg, tmp_path / "single", "rnb")
    np.testing.assert_allclose(ranks[0]["history"], [h["weights"] for h in single["history"]], atol=1e-5)
