import numpy as np
import pytest

from domix.types import Mixture, MixtureError


def test_mixture_normalises_and_validates():
    m = Mixture(("a", "b"), [1.0, 3.0])
    assert m["b"] == pytest.approx(0.75) and m.weights.sum() == pytest.approx(1.0)
    with pytest.raises(MixtureError, match="non-negative"):
        Mixture(("a", "b"), [1.0, -0.1])
    with pytest.raises(MixtureError, match="finite"):
        Mixture(("a", "b"), [1.0, np.nan])
    with pytest.raises(MixtureError, match="duplicate"):
        Mixture(("a", "a"), [1.0, 1.0])
    with pytest.raises(MixtureError, match="2 weights for 3 domains"):
        Mixture(("a", "b", "c"), [1.0, 1.0])
    with pytest.raises(MixtureError, match="sum to zero"):
        Mixture(("a",), [0.0])


def test_from_mapping_and_save_load(tmp_path):
    m = Mixture.from_mapping({"b": 1.0}, domains=("a", "b"))
    assert m.as_dict() == {"a": 0.0, "b": 1.0}
    with pytest.raises(MixtureError, match="unknown domains"):
        Mixture.from_mapping({"z": 1.0}, domains=("a", "b"))
    m.save(tmp_path / "mix.json", method="test")
    assert Mixture.load(tmp_path / "mix.json") == m
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(MixtureError, match="not a mixture file"):
        Mixture.load(tmp_path / "bad.json")
