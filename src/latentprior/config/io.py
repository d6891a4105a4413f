"""Reading, checking and writing configs: YAML files, ``section.key=value`` overrides and plain data.

Every key is checked: an unknown key, a value of the wrong type or outside its choices raises
:class:`~latentprior.config.sections.ConfigError` naming the key and listing what is valid, so a typo never
silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from latentprior.config.sections import Config, ConfigError, EvalConfig, _check

__all__ = [
    "eval_config_from_dict",
    "section_from_dict",
    "load_config",
    "read_yaml",
    "parse_yaml",
    "config_from_dict",
    "config_to_dict",
    "flatten",
    "apply_overrides",
    "save_config",
]

_EXPONENT_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert ints to floats where a float is wanted."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        _check(value in choices, f"{key}: {value!r} is not valid; choose one of {list(choices)}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            _check(type(None) in args, f"{key}: null is not allowed")
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if origin is tuple:
        (item,) = {a for a in typing.get_args(tp) if a is not Ellipsis}
        _check(isinstance(value, list | tuple), f"{key}: expected a list, got {value!r}")
        return tuple(_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        _check(isinstance(value, bool), f"{key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        _check(isinstance(value, int) and not isinstance(value, bool), f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
            # YAML 1.1 (PyYAML) reads "2e-4" and "1E5" as strings: a float without a dot is still a float here.
            return float(value)
        _check(isinstance(value, int | float) and not isinstance(value, bool),
               f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        _check(isinstance(value, str), f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported annotation {tp}")  # pragma: no cover - programming error


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(map(str, set(data) - set(names)))  # str: YAML keys may be numbers, which do not sort with str
    if unknown:
        where = f"section '{prefix}'" if prefix else "the top level"
        raise ConfigError(f"unknown key(s) {unknown} in {where}; valid keys: {names}")
    kwargs = {}
    for name in names:
        if name not in data:
            continue
        key = f"{prefix}.{name}" if prefix else name
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, data[name] if data[name] is not None else {}, key)
        else:
            kwargs[name] = _coerce(data[name], tp, key)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:  # pragma: no cover - dataclass internals
        raise ConfigError(f"{prefix}: {e}") from e


def config_from_dict(data: dict[str, Any]) -> Config:
    """Build and validate a :class:`Config` from nested plain data."""
    return _build(Config, data or {}, "")


def eval_config_from_dict(data: dict[str, Any] | None) -> EvalConfig:
    """Build and validate an :class:`EvalConfig` (a sweep's ``eval:`` block, or CLI values)."""
    return _build(EvalConfig, data or {}, "eval")


def section_from_dict(cls: type, data: dict[str, Any] | None, where: str) -> Any:
    """Build any frozen dataclass of plain fields (e.g. a sweep file's ``resources:`` block) from plain data,
    with the same checks as a run config: unknown keys and wrong types raise :class:`ConfigError` naming ``where``."""
    return _build(cls, data or {}, where)


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """Nested plain data (YAML/JSON-safe) that :func:`config_from_dict` turns back into ``cfg``."""
    return dataclasses.asdict(cfg)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config data as ``{"section.key": value}`` (the keys overrides use)."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        out.update(flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def apply_overrides(cfg: Config, overrides: dict[str, Any] | list[str]) -> Config:
    """Apply ``section.key=value`` overrides; values in a list of strings are parsed as YAML scalars."""
    if isinstance(overrides, list):
        parsed: dict[str, Any] = {}
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override {item!r} must look like section.key=value")
            k, v = item.split("=", 1)
            parsed[k.strip()] = parse_yaml(v, f"override {item!r}")
        overrides = parsed
    data = config_to_dict(cfg)
    sections = [f.name for f in dataclasses.fields(Config)]
    for dotted, value in overrides.items():
        parts = str(dotted).split(".")
        if len(parts) != 2 or parts[0] not in sections:
            raise ConfigError(f"override key {str(dotted)!r} must be section.key with section one of {sections}")
        section, key = parts
        if key not in data[section]:
            raise ConfigError(f"unknown key {key!r} in section '{section}'; valid keys: {list(data[section])}")
        data[section][key] = value
    return config_from_dict(data)


def parse_yaml(text: str | bytes, where: str) -> Any:
    """YAML data from ``text`` (bytes: PyYAML checks the encoding); any failure is a one-line :class:`ConfigError`
    that starts with ``where``."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)  # PyYAML's own message spans several lines: keep what and where
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = getattr(e, "problem", None) or str(e).strip().splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML: {what}{at}") from e
    except RecursionError as e:  # thousands of nested brackets
        raise ConfigError(f"{where}: not valid YAML: nested too deeply") from e
    except ValueError as e:  # a scalar PyYAML cannot convert, e.g. an integer of 5000 digits
        raise ConfigError(f"{where}: not valid YAML: {str(e).splitlines()[0]}") from e


def read_yaml(path: str | Path, what: str = "config") -> Any:
    """The data of a YAML file (None when empty); a missing file or bad YAML is a one-line :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} file not found: {path}")
    return parse_yaml(path.read_bytes(), str(path))


def load_config(path: str | Path, overrides: dict[str, Any] | list[str] | None = None) -> Config:
    """Read a YAML config file, validate it and apply overrides."""
    cfg = config_from_dict(read_yaml(path) or {})
    return apply_overrides(cfg, overrides) if overrides else cfg


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as YAML (atomically: the file is either old or new, never half)."""
    from latentprior.atomic import atomic_write_bytes

    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
    atomic_write_bytes(Path(path), text.encode())
