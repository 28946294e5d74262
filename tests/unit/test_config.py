from dataclasses import dataclass, field
from typing import Literal

import pytest

from domix.config import Config, ConfigError


@dataclass
class Inner(Config):
    lr: float = 1e-3
    steps: int = 10
    name: str | None = None
    mode: Literal["a", "b"] = "a"


@dataclass
class Outer(Config):
    inner: Inner = field(default_factory=Inner)
    tags: list[str] = field(default_factory=list)
    params: dict[str, float] = field(default_factory=dict)
    flag: bool = False


def test_unknown_key_names_its_dotted_path_and_suggests():
    with pytest.raises(ConfigError, match=r"unknown key 'inner\.stpes' \(did you mean 'steps'\?\)"):
        Outer.from_dict({"inner": {"stpes": 3}})


def test_types_are_checked_and_coerced():
    cfg = Outer.from_dict(
        {"inner": {"lr": 1, "steps": 5.0, "mode": "b"}, "tags": ["x"], "params": {"a": 2}}
    )
    assert cfg.inner.lr == 1.0 and isinstance(cfg.inner.lr, float)
    assert cfg.inner.steps == 5 and cfg.inner.mode == "b" and cfg.params == {"a": 2.0}
    with pytest.raises(ConfigError, match=r"inner\.steps: expected an integer"):
        Outer.from_dict({"inner": {"steps": "many"}})
    with pytest.raises(ConfigError, match=r"inner\.mode: 'c' is not one of"):
        Outer.from_dict({"inner": {"mode": "c"}})
    with pytest.raises(ConfigError, match="flag: expected true or false"):
        Outer.from_dict({"flag": "yes"})


def test_merge_dotlist_parses_yaml_values_and_stays_strict():
    cfg = Outer().merge(["inner.lr=3e-4", "inner.name=run1", "flag=true", "tags=[a, b]"])
    assert (
        cfg.inner.lr == 3e-4
        and cfg.inner.name == "run1"
        and cfg.flag is True
        and cfg.tags == ["a", "b"]
    )
    with pytest.raises(ConfigError, match="unknown key 'inner.nope'"):
        Outer().merge(["inner.nope=1"])
    with pytest.raises(ConfigError, match="must look like"):
        Outer().merge(["inner.lr"])
    # text that is not valid YAML is the string typed (a prompt template); YAML of another type is a
    # type error, not a traceback
    assert Outer().merge(["inner.name=Q: {prompt} A:"]).inner.name == "Q: {prompt} A:"
    with pytest.raises(ConfigError, match="inner.name: expected a string"):
        Outer().merge(["inner.name=a: b"])


def test_round_trip_and_yaml_errors(tmp_path):
    cfg = Outer().merge(["inner.steps=7"])
    assert Outer.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()
    bad = tmp_path / "bad.yaml"
    bad.write_text("inner: {lr: [1, 2}\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Outer.from_yaml(bad)
    with pytest.raises(ConfigError, match="not found"):
        Outer.from_yaml(tmp_path / "missing.yaml")


def test_run_config_example_files_load():
    from pathlib import Path

    from domix.compare import CompareConfig
    from domix.run import RunConfig

    paths = sorted(Path(__file__).parents[2].joinpath("configs").glob("*.yaml"))
    assert any(p.name.startswith("compare-") for p in paths)
    for path in paths:
        (CompareConfig if path.name.startswith("compare-") else RunConfig).from_yaml(path)
