"""Two gloo processes: every rank computes the same mixture, equal to one process on the same
global batches (per-domain gradient sums and counts are all-reduced)."""

import numpy as np
import pytest

from domix.launch import launch
from domix.run import train


@pytest.mark.distributed
def test_two_ranks_compute_the_same_rnb_mixture_as_one_process(tmp_path, micro_config):
    cfg = micro_config(tmp_path / "ddp", steps=6, batch_size=2, eval_every=6, checkpoint_every=6).merge(
        ["mixing.method=rnb", "mixing.params.round_steps=2"])
    ranks = launch(cfg, nproc=2)
    assert ranks[0]["mixture_weights"] == ranks[1]["mixture_weights"]  # identical on every rank
    assert ranks[0]["eval"] == ranks[1]["eval"]
    assert not np.allclose(ranks[0]["mixture_weights"], 0.2)
    # one process with the whole global batch (2 ranks x 2) sees the same data and the same Gram
    single = train(cfg.merge([f"out_dir={tmp_path / 'single'}", "train.batch_size=4"]))
    assert np.allclose(ranks[0]["mixture_weights"], single.mixture.weights, atol=1e-5)
    assert ranks[0]["eval"]["macro"] == pytest.approx(single.summary["eval"]["macro"], abs=1e-4)


@pytest.mark.distributed
def test_two_ranks_resume_mid_round_to_the_uninterrupted_mixture(tmp_path, micro_config):
    """Each rank's partial-round gradient sums are rank-local: the checkpoint must hold all of them."""
    from domix.train.checkpoint import list_checkpoints

    cfg = micro_config(tmp_path / "ddp", steps=9, batch_size=2, eval_every=9, checkpoint_every=3).merge(
        ["mixing.method=rnb", "mixing.params.round_steps=4"])
    full = launch(cfg, nproc=2)
    steps = [s for s, _ in list_checkpoints(tmp_path / "ddp")]
    assert steps[-2:] == [6, 9]
    # "interrupt" after step 6, mid-way through round 2 (steps 4-7, rebalanced at 8): drop the last
    # checkpoint and resume from 6
    dict(list_checkpoints(tmp_path / "ddp"))[9].unlink()
    resumed = launch(cfg, nproc=2, resume=True)
    assert resumed[0]["mixture_weights"] == pytest.approx(full[0]["mixture_weights"], abs=1e-6)
    assert not np.allclose(full[0]["mixture_weights"], 0.2)


@pytest.mark.distributed
def test_two_ranks_compute_the_same_dograph_mixture_from_gathered_sketches(tmp_path, micro_config):
    """Probe and validation sketches are gathered over ranks: every rank clusters the same features
    and solves for the same weights."""
    import json

    cfg = micro_config(tmp_path / "ddp", steps=10, batch_size=2, eval_every=10, checkpoint_every=10).merge(
        ["mixing.method=dograph", "mixing.params.round_steps=4", "mixing.params.clusters=2",
         "mixing.signals.sample_grad_features.r1=4", "mixing.signals.sample_grad_features.r2=4",
         "mixing.signals.sample_grad_features.val_samples=3"])
    ranks = launch(cfg, nproc=2)
    assert ranks[0]["mixture_weights"] == ranks[1]["mixture_weights"]
    rows = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    refreshes = [r for r in rows if r["kind"] == "mix" and "mix/round" in r]
    assert len(refreshes) == 2 and all(r["mix/target_from_validation"] == 1 for r in refreshes)
    # 4 probe steps x 2 sequences x 2 ranks per refresh, all of them in the one record
    mixing = json.loads((tmp_path / "ddp" / "mixing.json").read_text())
    assert [len(r["sample_unit"]) for r in mixing["diagnostics"]["refreshes"]] == [16, 16]


@pytest.mark.distributed
def test_an_error_on_the_ranks_reaches_the_caller_with_its_message(tmp_path, micro_config):
    """A rank that raises does not tear its group down under its peers: spawn reports the traceback."""
    from torch.multiprocessing import ProcessRaisedException

    cfg = micro_config(tmp_path / "ddp", steps=3, batch_size=2, eval_every=3, checkpoint_every=3)
    launch(cfg, nproc=2)
    with pytest.raises(ProcessRaisedException, match="refusing to resume .* it was for 3 steps"):
        launch(cfg.merge(["train.steps=5"]), nproc=2, resume=True)
