"""examples/classifier.py: R&B on a digit classifier's last linear layer, in a plain PyTorch loop
(scikit-learn's bundled digits in five image domains; seconds)."""

import runpy
import sys
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "classifier.py"


def test_rnb_on_a_classifier_learns_every_domain_and_moves_the_mixture():
    ex = runpy.run_path(str(EXAMPLE))
    strat = ex["train"]("stratified", seed=0, steps=200)
    rnb = ex["train"]("rnb", seed=0, steps=200, round_steps=20)
    names = list(ex["SHARE"])
    for result in (strat, rnb):
        assert all(result[d] > 0.4 for d in names)  # 10 classes: chance is 0.1
    assert strat["weights"] == {d: 0.2 for d in names}
    assert not np.allclose(list(rnb["weights"].values()), 0.2)  # R&B read the split gradients


def test_the_example_script_runs(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["classifier.py", "--seeds", "0", "--steps", "60", "--methods", "rnb"])
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    assert "rnb" in out and "macro" in out and "weights" in out
