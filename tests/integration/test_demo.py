"""The README's main job, end to end on a capped slice of the real demo corpus."""

import json

import numpy as np

from domix.demo import run_demo


def test_demo_runs_the_2x2_ablation_and_writes_table_and_plots(tmp_path, demo_corpus, capsys):
    kwargs = {"tokens": 16 * 128 * 8, "k": 6, "progress": False, "max_docs_per_domain": 120,
              "params": {"rnb": {"round_steps": 4}}}
    cmp = run_demo(tmp_path / "demo", **kwargs)
    results = {r.cell.group: r for r in cmp.results}
    assert list(results) == ["stratified / original", "stratified / regrouped", "proportional / original",
                             "rnb / original", "rnb / regrouped"]
    assert np.allclose(list(results["stratified / original"].summary["mixture"].values()), 0.2)
    assert len(results["rnb / regrouped"].summary["mixture"]) == 6
    # every run is evaluated on the same original domains, whatever it trained on
    assert all(list(r.summary["eval"]["per_domain"]) == ["code", "dialogue", "drama", "math", "news"]
               for r in results.values())
    out = capsys.readouterr().out
    assert "macro loss" in out and "Regroup alone (stratified: regrouped - original)" in out
    assert "Balance on regrouped domains (rnb - stratified)" in out
    for png in ("loss_curves.png", "loss_curves_by_domain.png", "mixtures.png", "rnb_rounds.png", "rnb_gram.png",
                "regroup_map.png"):
        assert (tmp_path / "demo" / png).stat().st_size > 10_000
    assert (tmp_path / "demo" / "report.html").stat().st_size > 40_000
    table = (tmp_path / "demo" / "table.md").read_text()
    assert "| stratified / original | 1 |" in table
    rnb = results["rnb / regrouped"].out_dir
    assert rnb.parent == tmp_path / "demo" / "runs" and rnb.name.startswith("rnb-regrouped-seed0-")
    mixing = json.loads((rnb / "mixing.json").read_text())
    assert [h["step"] for h in mixing["history"]] == [0, 4]  # R&B rebalanced once, after round 1
    assert not np.allclose(mixing["history"][1]["weights"], 1 / 6)
    # rerunning reads the finished runs back and gives the same numbers
    again = {r.cell.group: r for r in run_demo(tmp_path / "demo", **kwargs).results}
    assert not any(r.trained for r in again.values())
    assert again["rnb / regrouped"].summary["eval"] == results["rnb / regrouped"].summary["eval"]
