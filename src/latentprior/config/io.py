"""Reading and writing configs: YAML files, ``section.key=value`` overrides and plain data (the checks are
:mod:`.typed`'s).

Every key is checked: an unknown key, a value of the wrong type or outside its choices raises
:class:`~latentprior.config.typed.ConfigError` naming the key and listing what is valid, so a typo never
silently falls back to a default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from latentprior.config.sections import Config, EvalConfig, ExPostPriorConfig
from latentprior.config.typed import ConfigError, apply_overrides, build, parse_yaml, to_dict

__all__ = [
    "eval_config_from_dict",
    "expost_config_from_dict",
    "expost_config",
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


def config_from_dict(data: dict[str, Any]) -> Config:
    """Build and validate a :class:`Config` from nested plain data."""
    return build(Config, data or {}, "")


def eval_config_from_dict(data: dict[str, Any] | None) -> EvalConfig:
    """Build and validate an :class:`EvalConfig` (a sweep's ``eval:`` block, or CLI values)."""
    return build(EvalConfig, data or {}, "eval")


def expost_config_from_dict(data: dict[str, Any] | None, where: str = "prior") -> ExPostPriorConfig:
    """Build and validate an :class:`ExPostPriorConfig` (a prior checkpoint's or a study file's)."""
    return build(ExPostPriorConfig, data or {}, where)


@dataclass(frozen=True)
class _ExPost:
    """The one section ``--set prior.KEY=VALUE`` of ``train-prior --prior KIND`` addresses."""

    prior: ExPostPriorConfig = field(default_factory=ExPostPriorConfig)


def expost_config(kind: str, overrides: dict[str, Any] | list[str] | None = None) -> ExPostPriorConfig:
    """The ex-post prior ``kind`` with ``prior.KEY=VALUE`` overrides (strings parsed as YAML scalars, or a mapping
    of dotted keys), every key and value checked as a run config's."""
    cfg = _ExPost(build(ExPostPriorConfig, {"kind": kind}, "prior"))
    return apply_overrides(cfg, overrides).prior if overrides else cfg.prior


def section_from_dict(cls: type, data: dict[str, Any] | None, where: str) -> Any:
    """Build any frozen dataclass of plain fields (e.g. a sweep file's ``resources:`` block) from plain data,
    with the same checks as a run config: unknown keys and wrong types raise :class:`ConfigError` naming ``where``."""
    return build(cls, data or {}, where)


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """Nested plain data (YAML/JSON-safe: tuples become lists) that :func:`config_from_dict` turns back into ``cfg``."""
    return _lists(to_dict(cfg))


def _lists(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _lists(v) for k, v in data.items()}
    return [_lists(v) for v in data] if isinstance(data, list | tuple) else data


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config data as ``{"section.key": value}`` (the keys overrides use)."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        out.update(flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


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
