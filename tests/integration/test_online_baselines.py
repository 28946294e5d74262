"""The online baselines train the micro model end to end on real text, and resume exactly from a
checkpoint taken in the middle of a hold (ODM, ADO, DoGE: every step; Aioli: between probes)."""

import json

import numpy as np
import pytest

from domix.run import train
from support import Interrupt, metrics_rows

CASES = {
    "odm": [],
    "ado": ["mixing.params.ignore_steps=0", "mixing.params.start_step=4", "mixing.params.refit_every=2",
            "mixing.params.subsample=1", "mixing.params.min_fit_points=2", "mixing.params.fit_iters=50"],
    "doge": ["mixing.params.mu=0.001"],
    "aioli": ["mixing.params.round_steps=8", "mixing.params.sweeps=1", "mixing.params.probe_steps=1"],
}
EXTRA = {"odm": set(), "ado": set(), "doge": {"backward_passes", "forward_passes", "eval_tokens"},
         "aioli": {"forward_passes", "eval_tokens"}}


@pytest.mark.parametrize("method", list(CASES))
def test_trains_and_resumes_mid_hold_exactly(tmp_path, micro_config, method):
    cfg = micro_config(tmp_path / "full", steps=10, checkpoint_every=3, eval_every=10).merge([f"mixing.method={method}", *CASES[method]])
    full = train(cfg)
    cut = cfg.merge([f"out_dir={tmp_path / 'cut'}"])
    with pytest.raises(KeyboardInterrupt):
        train(cut, callbacks=[Interrupt(at=7)])  # last checkpoint at step 6
    resumed = train(cut, resume=True)
    assert resumed.summary["mixture"] == full.summary["mixture"]
    assert resumed.summary["extra_compute"] == full.summary["extra_compute"]
    assert metrics_rows(tmp_path / "cut") == metrics_rows(tmp_path / "full")
    mixing = json.loads((tmp_path / "full" / "mixing.json").read_text())
    assert not np.allclose(mixing["history"][-1]["weights"], 0.2) or method == "doge"
    assert set(full.summary["extra_compute"]) == EXTRA[method]
    mix_rows = [r for r in metrics_rows(tmp_path / "full") if r["kind"] == "mix"]
    if method == "doge":  # sampling stays uniform; the objective's weights move
        assert full.summary["extra_compute"]["backward_passes"] >= 10 * 2
        assert mix_rows[-1]["extra/backward_passes"] > 0
        assert not np.allclose(list(full.summary["mixture"].values()), 0.2)
    if method == "aioli":  # one round: 3 steps on p_0, 5 one-step probes, then p_1
        assert [h["step"] for h in mixing["history"]] == [0, 3, 4, 5, 6, 7, 8]
        assert len(mixing["diagnostics"]["rounds"]) == 1
