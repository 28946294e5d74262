"""The README's main job, end to end on a capped slice of the real demo corpus."""

import json

import numpy as np

from domix.demo import run_demo


def test_demo_runs_the_2x2_ablation_and_writes_table_and_plots(tmp_path, demo_corpus, capsys):
    kwargs = {"tokens": 16 * 128 * 8, "k": 6, "progress": False, "max_docs_per_domain": 120,
              "params": {"rnb": {"round_steps": 4}}}
    results = run_demo(tmp_path / "demo", **kwargs)
    assert set(results) == {"stratified / original", "proportional / original", "rnb / original",
                            "stratified / regrouped", "rnb / regrouped"}
    assert np.allclose(results["stratified / original"].mixture.weights, 0.2)
    assert len(results["rnb / regrouped"].mixture) == 6
    # every run is evaluated on the same original domains, whatever it trained on
    assert all(list(r.eval.names) == ["code", "dialogue", "drama", "math", "news"] for r in results.values())
    out = capsys.readouterr().out
    assert "macro avg" in out and "Regroup (stratified: regrouped - original)" in out
    assert "Balance on regrouped (rnb - stratified)" in out
    for png in ("loss_curves.png", "mixtures.png"):
        assert (tmp_path / "demo" / png).stat().st_size > 10_000
    table = (tmp_path / "demo" / "table.md").read_text()
    assert table.startswith("| domain | stratified / original | proportional / original | rnb / original |")
    mixing = json.loads((results["rnb / regrouped"].out_dir / "mixing.json").read_text())
    assert results["rnb / regrouped"].out_dir.name == "rnb-regrouped-k6-seed0-16384tok"
    assert [h["step"] for h in mixing["history"]] == [0, 4]  # R&B rebalanced once, after round 1
    assert not np.allclose(mixing["history"][1]["weights"], 1 / 6)
    # rerunning reuses the finished runs (each resumes at its last step) and gives the same numbers
    again = run_demo(tmp_path / "demo", **kwargs)
    assert again["rnb / regrouped"].summary["eval"] == results["rnb / regrouped"].summary["eval"]
