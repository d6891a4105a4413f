"""Sweep files and their expansion into runs.

A sweep YAML names a base run config and the axes to vary::

    name: fig3_mnist
    base: ../mnist_vae_flow.yaml          # a run config, relative to this file, or an inline mapping
    overrides: {train.progress: false}     # applied to every run
    datasets:                              # optional: label -> overrides (or a list of data.name values)
      mnist: {data.name: mnist}
    models:                                # optional: label -> overrides; `base:` swaps the base config,
      vae_flow_fixed_gamma: {prior.kind: realnvp, objective.kind: vae, model.learn_gamma: false}
      aae_adv: {base: ../mnist_aae_adv.yaml, label: "AAE + adversarial prior"}
      vae_normal: {prior.kind: normal, grid: {objective.beta: [1], train.seed: [0]}}  # a baseline at one point
    grid:                                  # dotted config key -> values; the product of all axes
      objective.beta: [0, 0.01, 0.1, 1]
      train.seed: [0, 1, 2, 3, 4]
    eval: {metrics: [fid, pr, kid], n: 10000}
    resources: {cpus_per_trial: 1, threads: 1, max_concurrent: 2}

Overrides are applied in the order base -> ``overrides`` -> dataset -> model -> grid values, so a grid
axis wins over everything. Seeds are a grid axis like any other, which is what keeps them fixed across
β: the runs ``…-beta0-seed1`` and ``…-beta1-seed1`` differ in β alone. A run's name is built from its
labels and grid values only, so it is stable across restarts and readable (``mnist-aae_adv-beta0.1-seed1``).
A dataset or model entry's own ``grid:`` narrows (or replaces the values of) axes of the sweep's grid for
that entry alone; it may not add an axis, so every run name keeps the same shape.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latentprior.config import (
    Config,
    ConfigError,
    EvalConfig,
    apply_overrides,
    config_from_dict,
    eval_config_from_dict,
    read_yaml,
    section_from_dict,
)

__all__ = ["SweepSpec", "Resources", "Trial", "load_sweep", "sweep_from_dict", "select_models", "expand", "run_name",
           "AXIS_NAMES"]

# Short names used in run names for the usual axes; any other key uses its last part.
AXIS_NAMES = {"objective.beta": "beta", "model.latent_dim": "dim", "train.seed": "seed"}

_SPEC_KEYS = {"name", "base", "overrides", "datasets", "models", "grid", "eval", "resources", "retries"}
_META_KEYS = {"base", "label", "grid"}  # keys of a dataset/model entry that are not config overrides


@dataclass(frozen=True)
class Resources:
    """A sweep file's ``resources:`` block: what each trial asks of the executor, and how many run at once."""

    cpus_per_trial: float = field(default=1, metadata={"help": "CPUs Ray reserves for each trial"})
    gpus_per_trial: float = field(default=0, metadata={"help": "GPUs Ray reserves for each trial (fractions share "
                                                                "one)"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads inside each trial"})
    max_concurrent: int | None = field(default=None, metadata={
        "help": "trials at once; null: as many as the CPUs allow (on a cluster: as Ray schedules)"})

    def __post_init__(self) -> None:
        for key in ("cpus_per_trial", "gpus_per_trial"):
            if getattr(self, key) < 0:
                raise ConfigError(f"resources.{key} must be >= 0, got {getattr(self, key)}")
        if self.threads < 1:
            raise ConfigError(f"resources.threads must be >= 1, got {self.threads}")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise ConfigError(f"resources.max_concurrent must be >= 1 or null, got {self.max_concurrent}")


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep file. ``base`` is resolved config data; ``root`` is where relative paths start."""

    name: str
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    overrides: dict[str, Any] = field(default_factory=dict)
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    eval: EvalConfig = field(default_factory=EvalConfig)
    resources: Resources = field(default_factory=Resources)
    retries: int = 1
    root: Path = Path(".")


@dataclass(frozen=True)
class Trial:
    """One run of a sweep: its name, the overrides that define it, its resolved config and report labels."""

    name: str
    overrides: dict[str, Any]
    cfg: Config
    labels: dict[str, Any]


def _read_base(base: Any, root: Path, where: str) -> dict[str, Any]:
    """Config data from a path (relative to the sweep file) or an inline mapping; validated eagerly."""
    if isinstance(base, str):
        path = (root / base).resolve()
        data = read_yaml(path, f"{where}: base config")
        if not data:
            raise ConfigError(f"{where}: base config {path} is empty")
        try:
            config_from_dict(data)  # validate now, with the file's name in any error
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from e
        return data
    if isinstance(base, dict):
        config_from_dict(base)
        return base
    raise ConfigError(f"{where}: base must be a path or a mapping, got {type(base).__name__}")


def _entries(raw: Any, where: str, grid: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
    if raw is None:
        return {}
    if isinstance(raw, list) and where == "datasets":  # shorthand: [mnist, cifar10]
        return {str(n): {"data.name": n} for n in raw}
    if not isinstance(raw, dict) or not all(isinstance(v, dict | None) for v in raw.values()):
        raise ConfigError(f"sweep '{where}' must map a label to a mapping of overrides")
    entries = {str(k): dict(v or {}) for k, v in raw.items()}
    for label, entry in entries.items():
        _check_entry_grid(entry.get("grid"), grid, f"{where}.{label}.grid")
    return entries


def _check_entry_grid(own: Any, grid: dict[str, list[Any]], where: str) -> None:
    """An entry's ``grid:`` maps axes of the sweep's grid to non-empty lists (a new axis would change run names)."""
    if own is None:
        return
    if not isinstance(own, dict) or not all(isinstance(v, list) and v for v in own.values()):
        raise ConfigError(f"sweep '{where}' must map grid axes to non-empty lists of values, got {own!r}")
    extra = sorted(map(str, set(own) - set(grid)))
    if extra:
        raise ConfigError(f"sweep '{where}' names {extra}, which are not axes of the sweep's grid {list(grid)}; "
                          "an entry may only narrow the sweep's axes")


def _registered_metrics(ev: EvalConfig) -> EvalConfig:
    """``ev`` with its metric names checked against the registry (which owns that list) and normalised."""
    from latentprior.evaluation.registry import UnknownMetricError, check_metrics

    try:
        return dataclasses.replace(ev, metrics=check_metrics(ev.metrics))
    except UnknownMetricError as e:
        raise ConfigError(f"eval.metrics: {e}") from e


def sweep_from_dict(data: dict[str, Any], root: Path, default_name: str = "sweep") -> SweepSpec:
    """Validate sweep data (see the module docstring); ``root`` resolves relative ``base`` paths."""
    if not isinstance(data, dict):
        raise ConfigError("a sweep file must be a mapping")
    unknown = sorted(map(str, set(data) - _SPEC_KEYS))
    if unknown:
        raise ConfigError(f"unknown sweep key(s) {unknown}; valid keys: {sorted(_SPEC_KEYS)}")
    grid = data.get("grid") or {}
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise ConfigError("sweep 'grid' must map dotted config keys to non-empty lists of values")
    grid = {str(k): list(v) for k, v in grid.items()}
    ev = _registered_metrics(eval_config_from_dict(data.get("eval")))  # now, not after every run has trained
    overrides = data.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise ConfigError(f"sweep 'overrides' must map dotted config keys to values, got {overrides!r}")
    retries = data.get("retries", 1)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise ConfigError(f"sweep 'retries' must be an integer >= 0, got {retries!r}")
    return SweepSpec(
        name=str(data.get("name", default_name)),
        base=_read_base(data.get("base", {}), root, "sweep"),
        grid=grid,
        overrides=dict(overrides),
        datasets=_entries(data.get("datasets"), "datasets", grid),
        models=_entries(data.get("models"), "models", grid),
        eval=ev,
        resources=section_from_dict(Resources, data.get("resources"), "resources"),
        retries=retries,
        root=root,
    )


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate a sweep YAML file."""
    path = Path(path)
    data = read_yaml(path, "sweep") or {}
    try:
        return sweep_from_dict(data, path.resolve().parent, default_name=path.stem)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e


def select_models(spec: SweepSpec, names: list[str]) -> SweepSpec:
    """The sweep restricted to the named models (same run names, so a later full sweep skips them)."""
    unknown = sorted(set(names) - set(spec.models))
    if unknown:
        raise ConfigError(f"sweep {spec.name!r} has no model(s) {unknown}; its models: {list(spec.models)}")
    return dataclasses.replace(spec, models={k: v for k, v in spec.models.items() if k in names})


def _fmt(value: Any) -> str:
    """A short, filesystem-safe rendering: 0.1 -> '0.1', 1.0 -> '1', 1e-05 -> '1e-05', True -> 'true'."""
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, float):
        text = format(value, "g")
    else:
        text = str(value)
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", text)


def run_name(parts: list[str], grid_values: dict[str, Any]) -> str:
    """``label-label-axisVALUE-...`` from the dataset/model labels and the grid values, in grid order."""
    axes = [f"{AXIS_NAMES.get(k, k.split('.')[-1])}{_fmt(v)}" for k, v in grid_values.items()]
    return "-".join([_fmt(p) for p in parts] + axes)


def _split_meta(entry: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return {k: v for k, v in entry.items() if k in _META_KEYS}, {k: v for k, v in entry.items() if k not in _META_KEYS}


def expand(spec: SweepSpec, extra: dict[str, Any] | None = None) -> list[Trial]:
    """Every run of the sweep, in a stable order (dataset, model, then the grid axes in file order).

    ``extra`` overrides are applied last to every run (e.g. a data directory); they do not enter names.
    Raises :class:`ConfigError` for an invalid key or value in any run, or when two runs share a name.
    """
    datasets = spec.datasets or {"": {}}
    models = spec.models or {"": {}}
    keys = list(spec.grid)
    trials: list[Trial] = []
    for (d_label, d_entry), (m_label, m_entry) in itertools.product(datasets.items(), models.items()):
        d_meta, d_over = _split_meta(d_entry)
        m_meta, m_over = _split_meta(m_entry)
        base = spec.base
        for meta, where in ((d_meta, f"datasets.{d_label}"), (m_meta, f"models.{m_label}")):
            if "base" in meta:
                base = _read_base(meta["base"], spec.root, where)
        base_cfg = config_from_dict(base)
        axes = {**spec.grid, **d_meta.get("grid", {}), **m_meta.get("grid", {})}  # the model's narrowing wins
        for values in itertools.product(*(axes[k] for k in keys)):
            gv = dict(zip(keys, values, strict=True))
            overrides = {**spec.overrides, **d_over, **m_over, **gv}
            try:
                cfg = apply_overrides(base_cfg, {**overrides, **(extra or {})})
            except ConfigError as e:
                raise ConfigError(f"sweep {spec.name!r}, dataset {d_label!r}, model {m_label!r}, {gv}: {e}") from e
            dataset = d_label or cfg.data.name
            name = run_name([dataset] + ([m_label] if m_label else []), gv)
            labels = {"dataset": dataset, "model": m_label or "base",
                      "model_label": m_meta.get("label", m_label or "base"),
                      "beta": cfg.objective.beta, "latent_dim": cfg.model.latent_dim, "seed": cfg.train.seed,
                      **{AXIS_NAMES.get(k, k): v for k, v in gv.items() if k not in AXIS_NAMES}}
            trials.append(Trial(name=name, overrides=overrides, cfg=cfg, labels=labels))
    seen: dict[str, int] = {}
    for t in trials:
        seen[t.name] = seen.get(t.name, 0) + 1
    dup = sorted(n for n, c in seen.items() if c > 1)
    if dup:
        raise ConfigError(f"sweep {spec.name!r} gives several runs the same name: {dup[:5]}")
    return trials
