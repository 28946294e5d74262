"""The README's main job, end to end on a capped slice of the real demo corpus."""

import numpy as np

from domix.demo import run_demo


def test_demo_trains_both_mixtures_and_writes_table_and_plot(tmp_path, demo_corpus, capsys):
    results = run_demo(
        tmp_path / "demo", tokens=16 * 128 * 6, progress=False, max_docs_per_domain=120
    )
    assert set(results) == {"stratified", "proportional"}
    strat, prop = results["stratified"], results["proportional"]
    assert np.allclose(strat.mixture.weights, 0.2)
    tokens = np.array([t for t in prop.summary["epochs"].values()])
    assert prop.mixture.weights.argmax() != prop.mixture.weights.argmin() and tokens.min() > 0
    out = capsys.readouterr().out
    assert "macro avg" in out and "worst" in out and "stratified" in out and "proportional" in out
    assert (tmp_path / "demo" / "loss_curves.png").stat().st_size > 10_000
    table = (tmp_path / "demo" / "table.md").read_text()
    assert table.startswith("| domain | stratified | proportional |") and "| news |" in table
    # rerunning reuses the finished runs (each resumes at its last step) and gives the same numbers
    again = run_demo(
        tmp_path / "demo", tokens=16 * 128 * 6, progress=False, max_docs_per_domain=120
    )
    assert again["stratified"].summary["eval"] == strat.summary["eval"]
