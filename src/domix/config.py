"""Strict configuration dataclasses.

A ``Config`` is a dataclass whose fields are plain values or other ``Config`` classes. It is loaded
strictly: an unknown key is an error that names its full dotted path (and the closest known key);
values are checked against the field's type. ``merge(["train.lr=3e-4"])`` applies command-line
overrides, parsed as YAML scalars. Runtime code receives built objects, never raw arguments.

    cfg = RunConfig.from_yaml("run.yaml").merge(["train.steps=200", "model.preset=tiny"])
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Literal, Self, Union, get_args, get_origin

import yaml


class ConfigError(ValueError):
    """A configuration value or key is wrong; the message says which and how to fix it."""


@dataclasses.dataclass
class Config:
    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, _path: str = "") -> Self:
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise ConfigError(f"{_path or '<root>'}: expected a mapping, got {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        hints = typing.get_type_hints(cls)
        for key in data:
            if key not in fields:
                close = difflib.get_close_matches(str(key), list(fields), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                known = ", ".join(sorted(fields))
                raise ConfigError(f"unknown key '{_join(_path, key)}'{hint}; known keys: {known}")
        kwargs = {k: _coerce(hints[k], v, _join(_path, k)) for k, v in data.items()}
        obj = cls(**kwargs)
        obj.validate()
        return obj

    @classmethod
    def from_yaml(cls, path: str | Path) -> Self:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from e
        try:
            return cls.from_dict(data)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from e

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def merge(self, dotlist: list[str] | tuple[str, ...]) -> Self:
        """Return a copy with ``a.b.c=value`` overrides applied (values parsed as YAML)."""
        data = self.to_dict()
        for item in dotlist:
            if "=" not in item:
                raise ConfigError(f"override '{item}' must look like key.path=value")
            key, raw = item.split("=", 1)
            node = data
            parts = key.strip().split(".")
            for p in parts[:-1]:
                if not isinstance(node.get(p), dict):
                    node[p] = {} if node.get(p) is None else node[p]
                    if not isinstance(node[p], dict):
                        raise ConfigError(f"override '{item}': '{p}' is not a section")
                node = node[p]
            node[parts[-1]] = _parse_value(raw)
        return type(self).from_dict(data)

    def validate(self) -> None:
        """Hook for cross-field checks; raise ConfigError with what to fix."""


def _parse_value(raw: str) -> Any:
    """An override's value as YAML (numbers, lists, null...); text that is not valid YAML (``Q: {prompt}
    A:``) is taken as the string it is, which is the only thing it can mean."""
    if not raw.strip():
        return ""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _plain(v: Any) -> Any:
    if isinstance(v, Config):
        return v.to_dict()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, Path):
        return str(v)
    return v


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, path)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(
            errors[0] if len(errors) == 1 else f"{path}: {value!r} matches none of {tp}"
        )
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{path}: {value!r} is not one of {list(get_args(tp))}")
        return value
    if isinstance(tp, type) and issubclass(tp, Config):
        return tp.from_dict(value, path)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        (item_tp, *_) = get_args(tp) or (Any,)
        items = [_coerce(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        _, val_tp = get_args(tp) or (Any, Any)
        return {str(k): _coerce(val_tp, v, _join(path, k)) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 3e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return str(value)
    if tp is Path:
        return Path(str(value))
    raise ConfigError(f"{path}: unsupported field type {tp}")
