"""What every paper experiment does with its models: build their configs, train or reuse them, evaluate them.

An experiment file (``latentprior experiment NAME FILE``) names a base run config and, per model, the dotted
overrides that make it; the experiment trains each model into ``OUT/<name>`` (an interrupted run resumes, a
finished one takes no step) and reads back every metric already stored at the same sample count.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from latentprior.config import Config, ConfigError, EvalConfig

__all__ = ["model_configs", "train_model", "evaluate_or_reuse", "sample_count"]


def model_configs(base: Config, data: dict[str, Any], names: Iterable[str], where: str) -> dict[str, Config]:
    """``name -> base with data[name]'s overrides`` for each name; a missing entry means the base unchanged."""
    configs = {}
    for name in names:
        overrides = data.get(name) or {}
        if not isinstance(overrides, dict):
            raise ConfigError(f"{where}: '{name}' must map dotted config keys to values, got {overrides!r}")
        configs[name] = base.replace(**overrides)
    return configs


def train_model(cfg: Config, run_dir: Path, data_dir: str | None) -> Config:
    """Train ``cfg`` into ``run_dir`` to its budget (resuming what is there); returns the config it used."""
    from latentprior.training import train

    if data_dir is not None:
        cfg = cfg.replace(**{"data.dir": data_dir})
    train(cfg, run_dir)
    return cfg


def sample_count(ev: EvalConfig, metric: str) -> int:
    """The n a metric's record states in its protocol (what decides whether a stored record is reused)."""
    return {"separability": ev.separability_n, "ppl": ev.ppl_n}.get(metric.split("_")[0], ev.n)


def evaluate_or_reuse(run_dir: Path, ev: EvalConfig, **kwargs: Any) -> dict[str, dict]:
    """The records of ``ev.metrics``: stored ones at the same sample count are read, the others computed
    (``kwargs`` go to :func:`~latentprior.evaluation.evaluate_run`)."""
    from latentprior.evaluation import evaluate_run
    from latentprior.experiments.state import run_is_done

    todo = tuple(m for m in ev.metrics if not run_is_done(run_dir, [m], sample_count(ev, m)))
    records = evaluate_run(run_dir, dataclasses.replace(ev, metrics=todo), **kwargs) if todo else {}
    return {m: records[m] if m in records else json.loads((run_dir / "eval" / f"{m}.json").read_text())
            for m in ev.metrics}
