"""``RUN_DIR/config.yaml`` (the run's resolved config) and ``RUN_DIR/config_history.jsonl`` (what was changed on
resume, and when).

The config file is written by the run that owns the directory and read back by reports, sweeps and TensorBoard's
hparams. It is read with YAML's safe loader: a tag such as ``!!python/object/apply`` is refused in one line,
never constructed. The checkpoint holds its own copy of the config, which is what resuming and loading a model
use; this file is the human-readable one.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from latentprior.atomic import writing
from latentprior.config import Config, ConfigError, parse_yaml, save_config
from latentprior.rundir.layout import RunDir, run_dir_of

__all__ = ["write_run_config", "read_run_config", "append_config_history", "read_config_history"]


def write_run_config(run_dir: str | os.PathLike[str] | RunDir, cfg: Config) -> None:
    """Write the resolved ``cfg`` as ``RUN_DIR/config.yaml`` (atomically)."""
    save_config(cfg, run_dir_of(run_dir).config)


def read_run_config(run_dir: str | os.PathLike[str] | RunDir, *, strict: bool = False) -> dict[str, Any] | None:
    """The data of ``RUN_DIR/config.yaml`` as plain nested data; None when the file is absent.

    A file that is not valid YAML, holds a YAML tag, or is not a mapping: None, or with ``strict`` a one-line
    :class:`~latentprior.config.ConfigError` naming the file (reports skip such a config; commands that need it
    refuse).
    """
    path = run_dir_of(run_dir).config
    if not path.is_file():
        return None
    try:
        data = parse_yaml(path.read_bytes(), str(path))
    except ConfigError:
        if strict:
            raise
        return None
    if isinstance(data, dict):
        return data
    if strict:
        raise ConfigError(f"{path}: expected the run's config (a mapping of sections), got {type(data).__name__}")
    return None


def append_config_history(run_dir: str | os.PathLike[str] | RunDir, step: int, changes: dict[str, Any],
                          previous: dict[str, Any]) -> None:
    """Record that the keys in ``changes`` (``section.key -> new value``) changed from ``previous`` at ``step``."""
    rd = run_dir_of(run_dir)
    line = json.dumps({"step": int(step), "time": time.time(),
                       "changes": {k: {"from": previous.get(k), "to": v} for k, v in changes.items()}}, default=str)
    with writing(rd.config_history), rd.config_history.open("a") as fh:
        fh.write(line + "\n")


def read_config_history(run_dir: str | os.PathLike[str] | RunDir) -> list[dict[str, Any]]:
    """The history records, oldest first (unreadable lines skipped)."""
    path = run_dir_of(run_dir).config_history
    out = []
    for line in path.read_bytes().splitlines() if path.is_file() else []:
        try:
            record = json.loads(line)
        except (UnicodeDecodeError, ValueError):
            continue
        if isinstance(record, dict):
            out.append(record)
    return out
