"""Typed building of frozen config dataclasses from plain data: the one checker of keys, types and choices.

Every way of making a config (YAML files, ``--set section.key=value``, sweep files, Python) ends in
:func:`build`, so an unknown key, a value of the wrong type or outside its ``Literal`` choices raises
:class:`ConfigError` naming the key and listing what is valid, and a typo never silently falls back to a default.
It is also the one place that turns values into floats, and every float of every section must be finite: YAML
reads ``.inf`` and ``.nan`` as numbers, and no field means anything by them (an infinite budget, learning rate or
scale only fails later, in an integer conversion or as a NaN loss).
Generic over the dataclass: the config sections (:mod:`.sections`) use it without this module knowing them.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from typing import Any, Literal

import yaml

from latentprior.errors import UserError

__all__ = ["ConfigError", "build", "apply_overrides", "parse_yaml", "to_dict", "check", "at_least"]


class ConfigError(ValueError, UserError):
    """A configuration key or value is invalid; the message names it and lists valid choices."""


def at_least(section: Any, name: str, **minimum: float) -> None:
    """Each named field of ``section`` is >= its minimum, else a ConfigError naming ``name.field``."""
    for key, low in minimum.items():
        value = getattr(section, key)
        check(value >= low, f"{name}.{key} must be >= {low}, got {value}")


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


_EXPONENT_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert ints to floats where a float is wanted."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        check(value in choices, f"{key}: {value!r} is not valid; choose one of {list(choices)}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            check(type(None) in args, f"{key}: null is not allowed")
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
    if origin is dict:
        # a mapping of keyword arguments (a factory's): names to plain YAML data, so that the config file holds it
        check(isinstance(value, dict) and all(isinstance(k, str) for k in value),
              f"{key}: expected a mapping of names to values, got {value!r}")
        for k, v in value.items():
            check(_plain(v), f"{key}.{k}: expected plain data (numbers, strings, true/false, null, lists, "
                  f"mappings), got {type(v).__name__}")
        return dict(value)
    if origin is tuple:
        (item,) = {a for a in typing.get_args(tp) if a is not Ellipsis}
        check(isinstance(value, list | tuple), f"{key}: expected a list, got {value!r}")
        return tuple(_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        check(isinstance(value, bool), f"{key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        check(isinstance(value, int) and not isinstance(value, bool), f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
            # YAML 1.1 (PyYAML) reads "2e-4" and "1E5" as strings: a float without a dot is still a float here.
            value = float(value)  # "1e999" overflows to inf, refused below
        check(isinstance(value, int | float) and not isinstance(value, bool),
               f"{key}: expected a number, got {value!r}")
        try:
            number = float(value)
        except OverflowError:  # an integer of hundreds of digits
            number = math.inf
        check(math.isfinite(number), f"{key}: expected a finite number, got {value!r}")
        return number
    if tp is str:
        check(isinstance(value, str), f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported annotation {tp}")  # pragma: no cover - programming error


def _plain(v: Any) -> bool:
    """Whether ``v`` is data a YAML file can hold: None, bool, int, float, str, and lists and mappings of them."""
    if v is None or isinstance(v, bool | int | float | str):
        return True
    if isinstance(v, list | tuple):
        return all(map(_plain, v))
    return isinstance(v, dict) and all(isinstance(k, str) and _plain(x) for k, x in v.items())


def build(cls: type, data: Any, prefix: str) -> Any:
    """An instance of the frozen dataclass ``cls`` from nested plain data, every key and value checked."""
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
            kwargs[name] = build(tp, data[name] if data[name] is not None else {}, key)
        else:
            kwargs[name] = _coerce(data[name], tp, key)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:  # pragma: no cover - dataclass internals
        raise ConfigError(f"{prefix}: {e}") from e


def to_dict(obj: Any) -> dict[str, Any]:
    """Nested plain data (YAML/JSON-safe) that :func:`build` turns back into ``obj``."""
    return dataclasses.asdict(obj)


def apply_overrides(cfg: Any, overrides: dict[str, Any] | list[str]) -> Any:
    """Apply ``section.key=value`` overrides; values in a list of strings are parsed as YAML scalars.

    A key whose value is a mapping (a factory's keyword arguments) also takes ``section.key.name=value``.
    """
    if isinstance(overrides, list):
        parsed: dict[str, Any] = {}
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override {item!r} must look like section.key=value")
            k, v = item.split("=", 1)
            parsed[k.strip()] = parse_yaml(v, f"override {item!r}")
        overrides = parsed
    data = to_dict(cfg)
    sections = [f.name for f in dataclasses.fields(cfg)]
    for dotted, value in overrides.items():
        parts = str(dotted).split(".")
        if len(parts) not in (2, 3) or parts[0] not in sections:
            raise ConfigError(f"override key {str(dotted)!r} must be section.key with section one of {sections}")
        section, key = parts[:2]
        if key not in data[section]:
            raise ConfigError(f"unknown key {key!r} in section '{section}'; valid keys: {list(data[section])}")
        if len(parts) == 3:
            if not isinstance(data[section][key], dict):
                raise ConfigError(f"override key {str(dotted)!r}: {section}.{key} is not a mapping; use "
                                  f"{section}.{key}=value")
            data[section][key] = {**data[section][key], parts[2]: value}
        else:
            data[section][key] = value
    return build(type(cfg), data, "")


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
