"""Read a sweep directory's finished runs: labels from ``sweep.json``, numbers from ``RUN_DIR/eval/*.json``.

Nothing here trains or evaluates. Every number a report shows comes from :func:`metric_values`, which
reads an eval file's fields as written (no rounding), so the report can be checked against the files.
Without ``sweep.json`` (a folder of runs made by hand) the labels come from each run's ``config.yaml``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["RunRecord", "collect_runs", "metric_values", "model_label_from_config", "LABEL_KEYS"]

LABEL_KEYS = ("dataset", "model", "beta", "latent_dim", "seed")
# Fields of an eval file that are settings or bookkeeping, never a number to tabulate.
_NOT_A_RESULT = {"n", "seed", "batch_size", "k", "nll_k", "step", "n_real", "n_fake", "n_samples", "time_s",
                 "wall_s", "elapsed_s", "dims", "nearest_k", "subsets", "subset_size", "n_ref", "splits"}


@dataclass
class RunRecord:
    """One run of a sweep as the report sees it."""

    name: str
    run_dir: Path
    status: str
    labels: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)  # column name -> value, as read from eval JSON
    eval_n: int | None = None  # the sample count in the eval files' protocol (None when they do not say)

    @property
    def samples(self) -> Path | None:
        p = self.run_dir / "samples" / "samples.png"
        return p if p.is_file() else None


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))


def metric_values(metric: str, data: dict[str, Any]) -> dict[str, float]:
    """Columns of one ``eval/<metric>.json``: ``metric`` for a numeric ``value``; ``metric.key`` for the
    numeric entries of a dict ``value`` and for numeric top-level result fields (e.g. precision, recall)."""
    out: dict[str, float] = {}
    value = data.get("value")
    if _number(value):
        out[metric] = float(value)
    elif isinstance(value, dict):
        out.update({f"{metric}.{k}": float(v) for k, v in value.items() if _number(v)})
    for k, v in data.items():
        if k != "value" and k not in _NOT_A_RESULT and _number(v):
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
            if isinstance(protocol, dict) and isinstance(protocol.get("n"), int):
                n = protocol["n"] if n is None else n
    return out, n


def model_label_from_config(cfg: dict[str, Any]) -> str:
    """A model label for a run made outside a sweep, e.g. ``vae_realnvp_fixed_gamma``, ``aae_adversarial``."""
    kind, prior = cfg["objective"]["kind"], cfg["prior"]["kind"]
    if kind == "vae":
        return f"vae_{prior}_{'learned' if cfg['model']['learn_gamma'] else 'fixed'}_gamma"
    return f"{kind}_{prior}"


def _labels_from_config(run_dir: Path) -> dict[str, Any]:
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    label = model_label_from_config(cfg)
    return {"dataset": cfg["data"]["name"], "model": label, "model_label": label, "beta": cfg["objective"]["beta"],
            "latent_dim": cfg["model"]["latent_dim"], "seed": cfg["train"]["seed"]}


def collect_runs(sweep_dir: str | Path) -> list[RunRecord]:
    """Every run of ``sweep_dir`` (finished or not), in the sweep's order; metrics only where eval files exist."""
    sweep_dir = Path(sweep_dir)
    state_path = sweep_dir / "sweep.json"
    records = []
    if state_path.is_file():
        runs = json.loads(state_path.read_text())["runs"]
        for name, rec in runs.items():
            run_dir = sweep_dir / rec.get("run_dir", f"runs/{name}")
            labels = dict(rec.get("labels") or {})
            labels.setdefault("model_label", labels.get("model", ""))
            records.append(RunRecord(name, run_dir, rec.get("status", "pending"), labels, *_read_metrics(run_dir)))
        return records
    for run_dir in sorted(p.parent for p in (sweep_dir / "runs").glob("*/config.yaml")):
        metrics, n = _read_metrics(run_dir)
        records.append(RunRecord(run_dir.name, run_dir, "done" if metrics else "unknown",
                                 _labels_from_config(run_dir), metrics, n))
    return records
