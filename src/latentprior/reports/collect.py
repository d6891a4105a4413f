"""Read finished runs: labels from ``sweep.json``, numbers from ``RUN_DIR/eval/*.json``.

Nothing here trains or evaluates. Every number a report shows comes from :func:`metric_values`, which
reads an eval file's fields as written (no rounding), so the report can be checked against the files.
Without ``sweep.json`` (a folder of runs made by hand, or one run) the labels come from each run's ``config.yaml``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from latentprior.experiments.state import read_sweep_state

__all__ = ["RunRecord", "collect_runs", "find_run_dirs", "metric_values", "model_label_from_config", "LABEL_KEYS"]

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

    def file(self, name: str) -> Path | None:
        """``RUN_DIR/<name>`` (e.g. ``samples/samples.png``, ``metrics.jsonl``) if it exists."""
        p = self.run_dir / name
        return p if p.exists() else None

    @property
    def samples(self) -> Path | None:
        return self.file("samples/samples.png")


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
    for path in sorted((run_dir / "eval").glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue  # a half-written file from a foreign writer; ours are atomic
        if isinstance(data, dict):
            out.update(metric_values(path.stem, data))
            protocol = data.get("protocol")
            if isinstance(protocol, dict):
                # generated samples; a metric of the test images alone (NLL) records only its n_ref
                count = protocol.get("n", protocol.get("n_ref"))
                n = count if n is None and isinstance(count, int) else n
    return out, n


def model_label_from_config(cfg: dict[str, Any]) -> str:
    """A model label for a run made outside a sweep, e.g. ``vae_realnvp_fixed_gamma``, ``aae_adversarial``."""
    kind, prior = cfg["objective"]["kind"], cfg["prior"]["kind"]
    if kind == "vae":
        return f"vae_{prior}_{'learned' if cfg['model']['learn_gamma'] else 'fixed'}_gamma"
    return f"{kind}_{prior}"


def _read_config(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "config.yaml"
    data = yaml.safe_load(path.read_text()) if path.is_file() else None
    return data if isinstance(data, dict) else None


def _labels_from_config(cfg: dict[str, Any]) -> dict[str, Any]:
    label = model_label_from_config(cfg)
    return {"dataset": cfg["data"]["name"], "model": label, "model_label": label, "beta": cfg["objective"]["beta"],
            "latent_dim": cfg["model"]["latent_dim"], "seed": cfg["train"]["seed"]}


def _from_config(run_dir: Path) -> RunRecord:
    """A run made outside a sweep: labels from its config, "done" once it has eval results."""
    cfg = _read_config(run_dir) or {}
    metrics, n = _read_metrics(run_dir)
    return RunRecord(run_dir.name, run_dir, "done" if metrics else "unknown", _labels_from_config(cfg), metrics, n,
                     cfg)


def find_run_dirs(path: Path) -> list[Path]:
    """The runs of a folder that has no sweep.json: itself (one run), else ``runs/*`` or ``*`` holding a config."""
    if (path / "config.yaml").is_file():
        return [path]
    for pattern in ("runs/*/config.yaml", "*/config.yaml"):
        found = sorted(p.parent for p in path.glob(pattern))
        if found:
            return found
    return []


def collect_runs(path: str | Path) -> list[RunRecord]:
    """Every run under ``path`` (finished or not), metrics only where eval files exist.

    ``path`` is a sweep folder (``sweep.json``: runs in the sweep's order, labels from the sweep), a plain folder
    of runs (``runs/*/config.yaml`` or ``*/config.yaml``) or one run (``config.yaml``).
    """
    path = Path(path)
    state_path = path / "sweep.json"
    if not state_path.is_file():
        return [_from_config(d) for d in find_run_dirs(path)]
    records = []
    for name, rec in read_sweep_state(state_path)["runs"].items():  # a corrupt file: one line naming it
        run_dir = path / rec.get("run_dir", f"runs/{name}")
        labels = dict(rec.get("labels") or {})
        labels.setdefault("model_label", labels.get("model", ""))
        result = rec.get("result") if isinstance(rec.get("result"), dict) else {}
        timing = {k: float(result[k]) for k in TIMING if isinstance(result.get(k), int | float)}
        records.append(RunRecord(name, run_dir, rec.get("status", "pending"), labels, *_read_metrics(run_dir),
                                 _read_config(run_dir), timing))
    return records
