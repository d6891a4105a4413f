"""What every paper experiment does with its models: build their configs, train or reuse them, evaluate them.

An experiment file (``latentprior experiment NAME FILE``) names a base run config and, per model, the dotted
overrides that make it; the experiment trains each model into ``OUT/<name>`` (an interrupted run resumes, a
finished one takes no step) and reads back every metric already stored at the same sample count.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from latentprior.config import Config, ConfigError, EvalConfig, eval_config_from_dict
from latentprior.rundir import RunDir, missing_metrics, read_eval_record

__all__ = ["model_configs", "eval_block", "train_model", "evaluate_or_reuse"]


def model_configs(base: Config, data: dict[str, Any], names: Iterable[str], where: str) -> dict[str, Config]:
    """``name -> base with data[name]'s overrides`` for each name; a missing entry means the base unchanged."""
    configs = {}
    for name in names:
        overrides = data.get(name) or {}
        if not isinstance(overrides, dict):
            raise ConfigError(f"{where}: '{name}' must map dotted config keys to values, got {overrides!r}")
        configs[name] = base.replace(**overrides)
    return configs


def eval_block(data: dict[str, Any], defaults: dict[str, Any], where: str) -> EvalConfig:
    """The file's ``eval:`` block (EvalConfig fields) over ``defaults``."""
    block = data.get("eval") or {}
    if not isinstance(block, dict):
        raise ConfigError(f"{where}: 'eval' must map EvalConfig fields to values, got {block!r}")
    return eval_config_from_dict(defaults | block)


def train_model(cfg: Config, run_dir: Path, data_dir: str | None) -> Config:
    """Train ``cfg`` into ``run_dir`` to its budget (resuming what is there); returns the config it used."""
    from latentprior.training import train

    if data_dir is not None:
        cfg = cfg.replace(**{"data.dir": data_dir})
    train(cfg, run_dir)
    return cfg


def evaluate_or_reuse(run_dir: Path, ev: EvalConfig, *, prior: str | None = None, **kwargs: Any) -> dict[str, dict]:
    """The records of ``ev.metrics`` (of the fitted prior ``prior`` when given, at ``ev.temperature``): stored ones
    at the same sample count are read, the others computed (``kwargs`` go to
    :func:`~latentprior.evaluation.evaluate_run`)."""
    from latentprior.evaluation import evaluate_run
    where = RunDir(run_dir) if prior is None else RunDir(run_dir).prior(prior)
    todo = tuple(missing_metrics(where, ev))
    if todo:
        kwargs = kwargs | ({"prior": prior} if prior is not None else {})
        records = evaluate_run(run_dir, dataclasses.replace(ev, metrics=todo), **kwargs)
    else:
        records = {}
    return {m: records[m] if m in records else read_eval_record(where, m, temperature=ev.temperature)
            for m in ev.metrics}
