"""The priors study's file, read and checked (``latentprior experiment priors STUDY.yaml``; the format is
:mod:`latentprior.studies.priors`'s): its joint and ex-post entries, the cells (latent dim, β, seed) they run at,
where each run lives and where each record is read from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentprior.config import (
    Config,
    ConfigError,
    EvalConfig,
    ExPostPriorConfig,
    apply_overrides,
    config_from_dict,
    expost_config_from_dict,
    read_yaml,
    section_from_dict,
)
from latentprior.rundir import RunDir, child_name, read_eval_record
from latentprior.studies.common import eval_block

__all__ = ["PriorStudy", "JointPrior", "ExPostPrior", "TemperatureSweep", "Cell", "load_prior_study",
           "prior_study_from_dict", "run_name", "priors_at", "record", "SAMPLE_METRICS"]

SAMPLE_METRICS = ("fid", "pr")  # of samples: per prior, and at each temperature
_KEYS = {"name", "base", "overrides", "betas", "seeds", "latent_dims", "joint", "autoencoder", "expost", "eval",
         "temperatures", "grid_samples"}


@dataclass(frozen=True)
class JointPrior:
    """A prior trained with the autoencoder: its config overrides (over the study's base)."""

    name: str
    label: str
    overrides: dict[str, Any]


@dataclass(frozen=True)
class ExPostPrior:
    """A prior fitted into the autoencoder entry's runs after training, at the study's β in ``betas`` (None: all)."""

    name: str
    label: str
    config: ExPostPriorConfig
    betas: tuple[float, ...] | None = None

    def at(self, beta: float) -> bool:
        return self.betas is None or beta in self.betas


@dataclass(frozen=True)
class TemperatureSweep:
    """FID / precision / recall of these priors at these temperatures (1 is every prior's own row), at these β."""

    values: tuple[float, ...] = ()
    priors: tuple[str, ...] = ()
    betas: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if any(not 0 < t < float("inf") for t in self.values):
            raise ConfigError(f"temperatures.values must be finite numbers > 0, got {list(self.values)}")


@dataclass(frozen=True)
class Cell:
    """One (latent dim, β, seed) of the study."""

    dim: int
    beta: float
    seed: int


@dataclass(frozen=True)
class PriorStudy:
    """A parsed study file (module docstring)."""

    base: Config
    betas: tuple[float, ...]
    seeds: tuple[int, ...]
    latent_dims: tuple[int, ...]
    joint: dict[str, JointPrior]
    autoencoder: str
    expost: dict[str, ExPostPrior]
    eval: EvalConfig
    temperatures: TemperatureSweep
    grid_samples: int = 10
    name: str = "priors"  # the folder of DIR that holds this file's tables and figures

    def cells(self) -> list[Cell]:
        return [Cell(d, b, s) for d in self.latent_dims for b in self.betas for s in self.seeds]

    def config(self, joint: str, cell: Cell) -> Config:
        """The run config of a joint entry at a cell."""
        return self.base.replace(**{**self.joint[joint].overrides, "objective.beta": cell.beta,
                                    "train.seed": cell.seed, "model.latent_dim": cell.dim})


def priors_at(study: PriorStudy, beta: float) -> list[tuple[str, str, str]]:
    """(name, label, "joint" or "ex post") of every prior the study has at ``beta``, in table order."""
    return ([(n, e.label, "joint") for n, e in study.joint.items()]
            + [(n, e.label, "ex post") for n, e in study.expost.items() if e.at(beta)])


def run_name(joint: str, cell: Cell) -> str:
    return f"{joint}-dim{cell.dim}-beta{cell.beta:g}-seed{cell.seed}"


def _numbers(data: dict[str, Any], key: str, kind: type, where: str, default: tuple = ()) -> tuple:
    values = data.get(key, list(default))
    ok = isinstance(values, list) and values and all(isinstance(v, int | float) and not isinstance(v, bool)
                                                     and (kind is float or isinstance(v, int)) for v in values)
    if not ok:
        raise ConfigError(f"{where}: '{key}' must be a non-empty list of {kind.__name__}s, got {values!r}")
    return tuple(kind(v) for v in values)


def _entries(data: dict[str, Any], key: str, where: str) -> dict[str, dict[str, Any]]:
    block = data.get(key) or {}
    if not isinstance(block, dict) or not all(isinstance(v, dict | None) for v in block.values()):
        raise ConfigError(f"{where}: '{key}' must map names to mappings, got {block!r}")
    for name in block:
        child_name(str(name), f"{key} entry")  # it becomes a folder name
    return {str(k): dict(v or {}) for k, v in block.items()}


def prior_study_from_dict(data: Any, root: Path, where: str = "study") -> PriorStudy:
    """Validate a study mapping (module docstring); relative paths start at ``root``. Errors are one line."""
    if not isinstance(data, dict) or set(data) - _KEYS or "base" not in data:
        unknown = sorted(set(data) - _KEYS) if isinstance(data, dict) else []
        raise ConfigError(f"{where}: expected a mapping with 'base' and keys from {sorted(_KEYS)}; unknown: {unknown}")
    base_data = read_yaml(root / data["base"], "base config") if isinstance(data["base"], str) else data["base"]
    base = config_from_dict(base_data or {})
    if data.get("overrides"):
        base = apply_overrides(base, data["overrides"])
    joint = {name: JointPrior(name, str(e.pop("label", name)), e)
             for name, e in _entries(data, "joint", where).items()}
    if not joint:
        raise ConfigError(f"{where}: 'joint' must name at least one prior trained with the autoencoder")
    autoencoder = data.get("autoencoder", next(iter(joint)))
    if autoencoder not in joint:
        raise ConfigError(f"{where}: autoencoder '{autoencoder}' is not one of the joint entries {list(joint)}")
    expost = {}
    for name, e in _entries(data, "expost", where).items():
        label, betas = str(e.pop("label", name)), e.pop("betas", None)
        betas = None if betas is None else _numbers({"betas": betas}, "betas", float, f"{where}: expost.{name}")
        expost[name] = ExPostPrior(name, label, expost_config_from_dict(e, f"expost.{name}"), betas)
    clash = sorted(set(joint) & set(expost))
    if clash:
        raise ConfigError(f"{where}: {clash} name both a joint and an ex-post prior; the table needs one name each")
    if isinstance(data.get("eval"), dict) and "metrics" in data["eval"]:
        raise ConfigError(f"{where}: eval.metrics is fixed by the study (fid, pr, recon_fid, prior_nll); leave it out")
    ev = eval_block(data, {"metrics": list(SAMPLE_METRICS)}, where)
    temps = section_from_dict(TemperatureSweep, data.get("temperatures"), "temperatures")
    unknown = sorted(set(temps.priors) - set(joint) - set(expost))
    if unknown:
        raise ConfigError(f"{where}: temperatures.priors {unknown} are not priors of the study")
    grid = data.get("grid_samples", 10)
    if not (isinstance(grid, int) and not isinstance(grid, bool) and grid >= 1):
        raise ConfigError(f"{where}: 'grid_samples' must be an integer >= 1 (samples per row), got {grid!r}")
    study = PriorStudy(base, _numbers(data, "betas", float, where), _numbers(data, "seeds", int, where),
                       _numbers(data, "latent_dims", int, where, (base.model.latent_dim,)), joint, autoencoder,
                       expost, ev, temps, grid,
                       child_name(data.get("name", "priors"), "study name"))
    for cell in study.cells():  # every run config is checked before anything trains
        for name in joint:
            study.config(name, cell)
    return study


def load_prior_study(path: str | Path) -> PriorStudy:
    path = Path(path)
    return prior_study_from_dict(read_yaml(path, "study"), path.parent, str(path))


def record(study: PriorStudy, out: Path, prior: str, cell: Cell, metric: str,
           temperature: float = 1.0) -> dict[str, Any] | None:
    """The stored record of ``metric`` for a prior of the study at a cell (the reconstruction FID of an ex-post
    prior is its autoencoder run's)."""
    if prior in study.joint:
        where = RunDir(out / "runs" / run_name(prior, cell))
    else:
        where = RunDir(out / "runs" / run_name(study.autoencoder, cell))
        where = where if metric == "recon_fid" else where.prior(prior)
    return read_eval_record(where, metric, temperature=temperature)
