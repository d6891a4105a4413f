"""Read finished runs (through :mod:`latentprior.rundir`): labels from ``sweep.json``, numbers from the eval records.

Nothing here trains or evaluates. Every number a report shows comes from :func:`metric_values`, which
reads an eval file's fields as written (no rounding), so the report can be checked against the files.
Without ``sweep.json`` (a folder of runs made by hand, or one run) the labels come from each run's ``config.yaml``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latentprior.rundir import RunDir, SweepDir, read_eval_records, read_progress, read_run_config, read_sweep_state

__all__ = ["RunRecord", "collect_runs", "fitted_priors", "find_run_dirs", "metric_values", "model_label_from_config",
           "LABEL_KEYS"]

LABEL_KEYS = ("dataset", "model", "beta", "latent_dim", "seed")
# Fields of an eval file that are settings or bookkeeping, never a number to tabulate: the guess for files
# that do not list their ``results`` (the metric registry declares them; evaluate_run writes them).
_NOT_A_RESULT = {"n", "seed", "batch_size", "k", "nll_k", "step", "n_real", "n_fake", "n_samples", "time_s",
                 "wall_s", "elapsed_s", "dims", "nearest_k", "subsets", "subset_size", "n_ref", "splits"}


TIMING = ("train_total_s", "train_s", "wall_s")  # the trial result's timings a report shows per run


@dataclass
class RunRecord:
    """One run as the report sees it. ``config`` is the run's ``config.yaml`` (None before it was written)."""

    name: str
    run_dir: Path
    status: str
    labels: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)  # column name -> value, as read from eval JSON
    eval_n: int | None = None  # the sample count in the eval files' protocol (None when they do not say)
    config: dict[str, Any] | None = None
    # seconds, from a sweep's record of the trial: "train_total_s" (the run's training over all its attempts),
    # "train_s" (the last attempt's training), "wall_s" (the last attempt's training + evaluation)
    timing: dict[str, float] = field(default_factory=dict)

    @property
    def rundir(self) -> RunDir:
        return RunDir(self.run_dir)

    @property
    def samples(self) -> Path | None:
        p = self.rundir.preview("samples")
        return p if p.is_file() else None


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))


def metric_values(metric: str, data: dict[str, Any]) -> dict[str, float]:
    """Columns of one ``eval/<metric>.json``: ``metric`` for a numeric ``value``; ``metric.key`` for the
    numeric entries of a dict ``value`` and for numeric top-level result fields (e.g. precision, recall) —
    the fields the file lists under ``results``, else every numeric field that is not bookkeeping."""
    out: dict[str, float] = {}
    value = data.get("value")
    if _number(value):
        out[metric] = float(value)
    elif isinstance(value, dict):
        out.update({f"{metric}.{k}": float(v) for k, v in value.items() if _number(v)})
    listed = data.get("results")
    for k, v in data.items():
        is_result = k in listed if isinstance(listed, list) else k not in _NOT_A_RESULT
        if k != "value" and is_result and _number(v):
            out.setdefault(f"{metric}.{k}", float(v))
    return out


def _read_metrics(run_dir: Path) -> tuple[dict[str, float], int | None]:
    out: dict[str, float] = {}
    n = None
    for metric, data in read_eval_records(run_dir).items():  # unreadable files read as absent
        out.update(metric_values(metric, data))
        protocol = data.get("protocol")
        if isinstance(protocol, dict):
            # generated samples; a metric of the test images alone (NLL) records only its n_ref
            count = protocol.get("n", protocol.get("n_ref"))
            n = count if n is None and isinstance(count, int) and not isinstance(count, bool) else n
    return out, n


def _get(cfg: dict[str, Any], dotted: str) -> Any:
    """``cfg[section][key]``, or None when the (hand-edited) config lacks it."""
    section, key = dotted.split(".")
    part = cfg.get(section)
    return part.get(key) if isinstance(part, dict) else None


def model_label_from_config(cfg: dict[str, Any]) -> str:
    """A model label for a run made outside a sweep, e.g. ``vae_realnvp_fixed_gamma``, ``aae_adversarial``."""
    kind, prior = _get(cfg, "objective.kind"), _get(cfg, "prior.kind")
    if kind == "vae":
        return f"vae_{prior}_{'learned' if _get(cfg, 'model.learn_gamma') else 'fixed'}_gamma"
    return f"{kind}_{prior}"


def _read_config(run_dir: Path) -> dict[str, Any] | None:
    return read_run_config(run_dir, strict=True)  # a config.yaml that is not the run's config: one line, named


def _labels_from_config(cfg: dict[str, Any]) -> dict[str, Any]:
    label = model_label_from_config(cfg)
    return {"dataset": _get(cfg, "data.name"), "model": label, "model_label": label,
            "beta": _get(cfg, "objective.beta"), "latent_dim": _get(cfg, "model.latent_dim"),
            "seed": _get(cfg, "train.seed")}


def _from_config(run_dir: Path) -> RunRecord:
    """A run made outside a sweep: labels from its config, "done" once it has eval results."""
    cfg = _read_config(run_dir) or {}
    metrics, n = _read_metrics(run_dir)
    return RunRecord(run_dir.name, run_dir, _status(run_dir, "done" if metrics else "unknown"),
                     _labels_from_config(cfg), metrics, n, cfg)


def _status(run_dir: Path, status: str) -> str:
    """``status``, except that a run whose training stopped before its budget (``--max-steps``) and that is not
    running or failed reads ``partial (N/M steps)``: its numbers are those of a model trained for N steps."""
    progress = read_progress(run_dir) if status in ("done", "unknown", "pending") else None
    return f"partial ({progress.describe()})" if progress is not None and not progress.finished else status


def find_run_dirs(path: Path) -> list[Path]:
    """The runs of a folder that has no sweep.json: itself (one run), else the runs in ``runs/`` or beside each
    other (folders that hold a run's config)."""
    if RunDir(path).exists():
        return [path]
    for parent in (SweepDir(path).runs, path):
        found = sorted(p for p in parent.iterdir() if p.is_dir() and RunDir(p).exists()) if parent.is_dir() else []
        if found:
            return found
    return []


def fitted_priors(run: RunRecord) -> list[RunRecord]:
    """A record per prior fitted into ``run`` after training (``RUN_DIR/priors/<name>/``): the run's labels with the
    model ``<model>+<name>``, and the prior's own eval records (its samples with the run's decoder)."""
    out = []
    for name in run.rundir.prior_names():
        rd = run.rundir.prior(name)
        metrics, n = _read_metrics(rd.path)
        labels = run.labels | {"model": f"{run.labels.get('model')}+{name}",
                               "model_label": f"{run.labels.get('model_label')} + {name} (fitted after training)"}
        out.append(RunRecord(f"{run.name}+{name}", rd.path, "done" if metrics else "fitted", labels, metrics, n,
                             run.config, {}))
    return out


def collect_runs(path: str | Path) -> list[RunRecord]:
    """Every run under ``path`` (finished or not), metrics only where eval files exist, each followed by the priors
    fitted into it after training (:func:`fitted_priors`).

    ``path`` is a sweep folder (``sweep.json``: runs in the sweep's order, labels from the sweep), a plain folder
    of runs (``runs/*/config.yaml`` or ``*/config.yaml``) or one run (``config.yaml``).
    """
    return [r for run in _collect(path) for r in (run, *fitted_priors(run))]


def _collect(path: str | Path) -> list[RunRecord]:
    sweep = SweepDir(path)
    if not sweep.is_sweep():
        return [_from_config(d) for d in find_run_dirs(sweep.path)]
    records = []
    # A corrupt file, or a run name that would leave the sweep folder: one line naming it.
    for name, rec in read_sweep_state(sweep)["runs"].items():
        run_dir = sweep.run(name).path
        labels = dict(rec.get("labels") or {}) if isinstance(rec.get("labels"), dict) else {}
        labels.setdefault("model_label", labels.get("model", ""))
        result = rec.get("result") if isinstance(rec.get("result"), dict) else {}
        timing = {k: float(result[k]) for k in TIMING if isinstance(result.get(k), int | float)}
        records.append(RunRecord(name, run_dir, _status(run_dir, str(rec.get("status", "pending"))), labels,
                                 *_read_metrics(run_dir),
                                 _read_config(run_dir), timing))
    return records
