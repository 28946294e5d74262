import json

import numpy as np
import pytest
import torch

from domix.run import prepare_data, train
from domix.train.checkpoint import ResumeError
from support import Interrupt, metrics_rows


def test_resume_reproduces_the_uninterrupted_run_exactly(tmp_path, micro_config):
    cfg = micro_config(tmp_path / "full", steps=8, checkpoint_every=4).merge(
        ["mixing.method=proportional"]
    )
    full = train(cfg)
    cut = cfg.merge([f"out_dir={tmp_path / 'cut'}"])
    with pytest.raises(KeyboardInterrupt):
        train(
            cut, callbacks=[Interrupt(at=5)]
        )  # dies after the step-4 checkpoint and one more step
    resumed = train(cut, resume=True)
    assert resumed.summary["steps"] == full.summary["steps"] == 8
    assert resumed.summary["eval"] == full.summary["eval"]
    assert metrics_rows(tmp_path / "cut") == metrics_rows(tmp_path / "full")
    a = torch.load(sorted((tmp_path / "full" / "checkpoints").glob("*.pt"))[-1], weights_only=False)
    b = torch.load(sorted((tmp_path / "cut" / "checkpoints").glob("*.pt"))[-1], weights_only=False)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["sampler"]["draws"].tolist() == b["sampler"]["draws"].tolist()


def test_resume_on_changed_data_is_refused(tmp_path, micro_config):
    cfg = micro_config(tmp_path / "run", steps=4, checkpoint_every=2)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, callbacks=[Interrupt(at=3)])
    with pytest.raises(ResumeError, match="domains.*fingerprints differ"):
        train(cfg.merge(["data.domains=subdomain"]), resume=True)
    with pytest.raises(ResumeError, match="mixing.*RnB"):  # another method's state is not loaded
        train(cfg.merge(["mixing.method=rnb"]), resume=True)
    with pytest.raises(ResumeError, match="it was for 4 steps"):
        train(cfg.merge(["train.steps=6"]), resume=True)


def test_training_learns_and_logs_stable_metric_names(tmp_path, micro_config):
    cfg = micro_config(tmp_path / "run", steps=24, eval_every=12, lr=1e-2)
    data = prepare_data(cfg)
    result = train(cfg, data=data)
    evals = [r for r in metrics_rows(tmp_path / "run") if r["kind"] == "eval"]
    assert len(evals) == 2 and evals[-1]["loss/val_macro"] < evals[0]["loss/val_macro"]
    first_train = next(r for r in metrics_rows(tmp_path / "run") if r["kind"] == "train")
    assert {"loss/train", "lr", "grad_norm", "tokens"} <= set(first_train)
    assert {f"loss/train/{d}" for d in data.train.names} <= set(first_train)
    mix = next(r for r in metrics_rows(tmp_path / "run") if r["kind"] == "mix")
    assert mix == {"step": 0, "kind": "mix", **{f"mix/weight/{d}": 0.2 for d in data.train.names}}
    assert set(result.summary["eval"]["per_domain"]) == set(data.eval.names)
    assert result.eval.worst[1] == max(result.eval.loss)
    assert (tmp_path / "run" / "config.yaml").exists() and (
        tmp_path / "run" / "summary.json"
    ).exists()


def test_loss_weighted_objective(tmp_path, micro_config):
    from domix.train.loop import Trainer

    trainer = Trainer.__new__(Trainer)
    trainer.m, trainer.valid_BT = 3, None
    loss_BT = torch.tensor([[1.0, 3.0], [2.0, 2.0], [5.0, 7.0]])
    dom = torch.tensor([0, 0, 2])
    trainer.loss_weights = None
    assert trainer.objective(loss_BT, dom).item() == pytest.approx(loss_BT.mean().item())
    trainer.loss_weights = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    # domain 0 mean = 2, domain 1 absent, domain 2 mean = 6
    assert trainer.objective(loss_BT, dom).item() == pytest.approx(0.5 * 2 + 0.2 * 6)


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    from domix.train.loop import lr_lambda

    lrs = [lr_lambda(s, 10, 100, 0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert np.all(np.diff(lrs[10:]) <= 1e-12) and lrs[-1] == pytest.approx(0.1, abs=1e-3)


@pytest.mark.parametrize("mode", ["exact", "sketch"])
def test_rnb_resumes_mid_round_exactly(tmp_path, micro_config, mode):
    """The gradient accumulators of an unfinished round are part of the checkpoint."""
    cfg = micro_config(tmp_path / "full", steps=10, checkpoint_every=3).merge(
        ["mixing.method=rnb", "mixing.params.round_steps=4", f"mixing.signals.domain_grad_gram.mode={mode}",
         "mixing.signals.domain_grad_gram.rows=32"])
    full = train(cfg)
    cut = cfg.merge([f"out_dir={tmp_path / 'cut'}"])
    with pytest.raises(KeyboardInterrupt):
        train(cut, callbacks=[Interrupt(at=7)])  # last checkpoint at step 6: mid-way through round 2
    resumed = train(cut, resume=True)
    assert resumed.summary["mixture"] == full.summary["mixture"]
    assert metrics_rows(tmp_path / "cut") == metrics_rows(tmp_path / "full")
    mixing = json.loads((tmp_path / "full" / "mixing.json").read_text())
    assert [h["step"] for h in mixing["history"]] == [0, 4, 8]
    assert not np.allclose(mixing["history"][-1]["weights"], 0.2)  # R&B moved the mixture
    assert [r["step"] for r in mixing["diagnostics"]["rounds"]] == [4, 8]  # per round: Gram, G pbar, weights
    # and each round's record is a mix line of metrics.jsonl
    rounds = [r for r in metrics_rows(tmp_path / "full") if r["kind"] == "mix" and "mix/round" in r]
    assert [(r["step"], r["mix/round"]) for r in rounds] == [(4, 1), (8, 2)]
    for r, d in zip(rounds, mixing["diagnostics"]["rounds"]):
        names = mixing["domains"]
        assert r["mix/l1_change"] == pytest.approx(d["l1_change"]) and r["mix/l1_change"] > 0
        assert [r[f"mix/gram_diag/{n}"] for n in names] == pytest.approx(np.diag(d["gram"]).tolist())
        assert [r[f"mix/gpbar/{n}"] for n in names] == pytest.approx(d["gpbar"])
        assert [r[f"mix/weight/{n}"] for n in names] == pytest.approx(d["weights"])
        assert {"mix/gram_offdiag_mean", "mix/gram_offdiag_min", "mix/gram_offdiag_max", "mix/gram_cos_mean"} <= set(r)
    # the result averages every mixture trained on by its steps, the last, partial round included
    w = [np.asarray(h["weights"]) for h in mixing["history"]]
    assert np.allclose(mixing["result"], (4 * w[0] + 4 * w[1] + 2 * w[2]) / 10)


def test_dograph_resumes_mid_probe_exactly(tmp_path, micro_config):
    """Probe features of an unfinished probe, k-means centroids and the method's RNG are checkpointed."""
    cfg = micro_config(tmp_path / "full", steps=12, checkpoint_every=4, eval_every=12).merge(
        ["mixing.method=dograph", "mixing.params.round_steps=5",
         "mixing.params.probe_steps=3", "mixing.params.clusters=3", "mixing.params.utility=gradient",
         "mixing.params.target_features=validation", "mixing.params.objective=mmd",
         "mixing.signals.sample_grad_features.r1=4", "mixing.signals.sample_grad_features.r2=4",
         "mixing.signals.sample_grad_features.val_samples=6"])
    data = prepare_data(cfg)
    full = train(cfg, data=data)
    cut = cfg.merge([f"out_dir={tmp_path / 'cut'}"])
    with pytest.raises(KeyboardInterrupt):
        train(cut, callbacks=[Interrupt(at=10)], data=data)  # last checkpoint at step 8: mid-probe
    resumed = train(cut, resume=True, data=data)
    assert resumed.summary["mixture"] == full.summary["mixture"]
    assert metrics_rows(tmp_path / "cut") == metrics_rows(tmp_path / "full")
    mixing = json.loads((tmp_path / "full" / "mixing.json").read_text())
    refreshes = mixing["diagnostics"]["refreshes"]
    assert [r["step"] for r in refreshes] == [5, 10]  # warm-up 5 steps, then every 5
    assert all(len(r["sample_unit"]) == 12 for r in refreshes)  # 3 probe steps x batch 4
    assert not np.allclose(mixing["history"][-1]["weights"], mixing["history"][0]["weights"])
    assert full.summary["extra_compute"]["sketch_samples"] == 24
    assert full.summary["extra_compute"]["val_samples"] == 12  # 6 validation sequences per refresh
    # each refresh's record is a mix line of metrics.jsonl
    lines = [r for r in metrics_rows(tmp_path / "full") if r["kind"] == "mix" and "mix/round" in r]
    assert [(r["step"], r["mix/round"]) for r in lines] == [(5, 1), (10, 2)]
    assert all(r["mix/target_from_validation"] == 1 for r in lines)
    for line, rec in zip(lines, refreshes):
        assert line["mix/l1_change"] == pytest.approx(rec["l1_change"])
        assert [line[f"mix/weight/{n}"] for n in mixing["domains"]] == pytest.approx(rec["weights"])
        for j, w, free, u in zip(rec["clusters"], rec["cluster_weights"], rec["unconstrained"], rec["utility"]):
            assert line[f"mix/cluster_weight/c{j:02d}"] == pytest.approx(w)
            assert line[f"mix/cluster_unconstrained/c{j:02d}"] == pytest.approx(free)
            assert line[f"mix/cluster_utility/c{j:02d}"] == pytest.approx(u, abs=1e-6)  # recorded to 6 places
            assert np.isfinite(line[f"mix/cluster_train_loss/c{j:02d}"])
    # and the compare report draws them
    from types import SimpleNamespace

    from domix.compare.grid import Cell
    from domix.compare.plots import plot_dograph_rounds

    run = SimpleNamespace(cell=Cell("dograph", "original", 0), out_dir=tmp_path / "full")
    png = plot_dograph_rounds(SimpleNamespace(config=SimpleNamespace(seeds=[0]), results=[run]), tmp_path / "dg.png")
    assert png.stat().st_size > 10_000
