"""Replicates of a study over seeds: the seed list, where each seed's models live, mean ± std over seeds.

A study file may name its seeds (``seeds: [0, 1, 2]``); ``--seeds 0,1,2`` on the command line replaces the
file's list. Replicate k is the study with ``train.seed = k`` in every model's config and ``eval.seed = k`` (so
the seeds vary both what is trained and which samples are drawn to evaluate it), written into ``OUT/seed<k>/``,
an ordinary one-seed study folder (its run directories, tables and figures). A one-seed folder written before
seed lists existed (``OUT/<model>/`` run directories) is the replicate of its runs' ``train.seed`` and is
reused as it is. Without a seed list a study is the one-seed study it always was, in ``OUT`` itself.

The summary of a result over replicates is its mean, its sample standard deviation (n − 1 in the denominator)
and n; the claims compare two summaries (:mod:`latentprior.studies.verdicts`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentprior.config import Config, ConfigError, EvalConfig
from latentprior.formatting import DIGITS, fmt_mean_std
from latentprior.rundir import read_run_config

__all__ = ["Summary", "summarise", "mean_std_text", "parse_seeds", "chosen_seeds", "seeded", "replicate_dir",
           "run_replicates", "summary_rows", "SEED_KEY"]

SEED_KEY = "seeds"  # the study file's key


@dataclass(frozen=True)
class Summary:
    """A result over replicates: ``values`` (one per seed, in seed order), their mean, sample std and count.

    ``std`` is None for fewer than two values (no spread can be measured from one)."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return math.fsum(self.values) / self.n if self.values else math.nan

    @property
    def std(self) -> float | None:
        if self.n < 2:
            return None
        m = self.mean
        return math.sqrt(math.fsum((v - m) ** 2 for v in self.values) / (self.n - 1))

    def text(self, digits: int = DIGITS) -> str:
        """``mean ± std`` (the mean alone for one value, '–' for none)."""
        return mean_std_text(self.mean, self.std, digits)


def mean_std_text(mean: float | None, std: float | None, digits: int = DIGITS) -> str:
    """``mean ± std`` as every table shows it (:func:`latentprior.formatting.fmt_mean_std`: the mean to ``digits``
    significant digits, the std to the same decimal place); the mean alone without a std, '–' for no mean."""
    return fmt_mean_std(mean, std, digits)


def summarise(values: Iterable[float | None]) -> Summary:
    """The :class:`Summary` of the values that exist (None: a replicate without this result)."""
    return Summary(tuple(float(v) for v in values if v is not None))


def parse_seeds(value: Any, where: str) -> tuple[int, ...] | None:
    """A seed list from a study file or the command line: a list of distinct integers >= 0 (or a string
    ``"0,1,2"``); None when absent. Raises a one-line :class:`ConfigError` otherwise."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise ConfigError(f"{where}: seeds must be a non-empty list of integers >= 0, got {value!r}")
    try:
        seeds = tuple(_seed(s) for s in items)
    except ValueError:
        seeds = ()
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ConfigError(f"{where}: seeds must be distinct integers >= 0, got {value!r}")
    return seeds


def _seed(item: Any) -> int:
    if isinstance(item, str):
        return int(item.strip())
    if isinstance(item, int) and not isinstance(item, bool):
        return item
    raise ValueError(item)


def chosen_seeds(in_file: Sequence[int] | None, given: Sequence[int] | None) -> tuple[int, ...] | None:
    """The command line's seeds when given, else the file's; None: the one-seed study of before."""
    chosen = given if given is not None else in_file
    return None if chosen is None else tuple(chosen)


def seeded(configs: dict[str, Config], ev: EvalConfig, seed: int) -> tuple[dict[str, Config], EvalConfig]:
    """Replicate ``seed``: every config with ``train.seed = seed``, the evaluation with ``eval.seed = seed``."""
    return ({name: cfg.replace(**{"train.seed": seed}) for name, cfg in configs.items()},
            dataclasses.replace(ev, seed=seed))


def replicate_dir(out: str | Path, seed: int, probe: str) -> Path:
    """Where replicate ``seed`` lives: ``OUT`` itself when ``OUT/<probe>`` is a run directory of a one-seed
    study trained with that seed (a folder written before seed lists), else ``OUT/seed<seed>``."""
    out = Path(out)
    legacy = read_run_config(out / probe)
    if legacy is not None and _train_seed(legacy) == seed:
        return out
    return out / f"seed{seed}"


def run_replicates(spec: Any, out: Path, seeds: Sequence[int], run_one: Callable[..., dict[str, Any]], probe: str,
                   **kw: Any) -> dict[int, dict[str, Any]]:
    """One study per seed: ``run_one`` on ``spec`` (a study dataclass with ``configs`` and ``eval``) re-seeded by
    :func:`seeded`, in :func:`replicate_dir`; returns each seed's result."""
    per_seed = {}
    for k in seeds:
        configs, ev = seeded(spec.configs, spec.eval, k)
        per_seed[k] = run_one(dataclasses.replace(spec, configs=configs, eval=ev), replicate_dir(out, k, probe), **kw)
    return per_seed


def _train_seed(config: dict[str, Any]) -> int | None:
    train = config.get("train")
    seed = train.get("seed", 0) if isinstance(train, dict) else 0  # 0: TrainConfig's default
    return seed if isinstance(seed, int) else None


def summary_rows(rows_by_seed: dict[int, list[dict[str, Any]]], keys: Sequence[str],
                 fields: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of replicate tables (seed -> rows, each identified by its ``keys`` columns) -> one row per identity,
    in first-seen order: the keys, then ``<field>_mean`` and ``<field>_std`` per field, then ``n`` (the
    replicates that have the row) and ``seeds``. A field a replicate's row lacks (None) is left out of its summary;
    a field no replicate has gets a None mean.
    """
    groups: dict[tuple, list[tuple[int, dict[str, Any]]]] = {}
    for seed, rows in rows_by_seed.items():
        for row in rows:
            groups.setdefault(tuple(row[k] for k in keys), []).append((seed, row))
    out = []
    for ident, members in groups.items():
        summary: dict[str, Any] = dict(zip(keys, ident, strict=True))
        for f in fields:
            s = summarise(r.get(f) for _, r in members)
            summary[f"{f}_mean"], summary[f"{f}_std"] = (s.mean if s.n else None), s.std
        summary["n"], summary["seeds"] = len(members), [seed for seed, _ in members]
        out.append(summary)
    return out
