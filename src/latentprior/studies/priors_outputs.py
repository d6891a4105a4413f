"""What ``latentprior experiment priors`` writes, and the two run-level steps it needs beyond training and evaluating:
fitting (or reusing) an ex-post prior, and checking that β = 0 runs share their autoencoder.

Every number in a table is read back from the eval records (:func:`latentprior.studies.priors.record`) and the
checkpoints (training and fit seconds), never from what the study computed in memory, so the files can be checked
against the records. Per seed: ``priors_runs_n<n>.csv``; mean ± std over seeds (sample standard deviation, empty
for one seed): ``priors_n<n>.md`` / ``.csv``; with several seeds, which prior beats which in standard errors:
``priors_effects_n<n>.md`` / ``.json`` (:mod:`latentprior.studies.priors_effects`).
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import torch

from latentprior.rundir import RunDir
from latentprior.rundir.checkpoints import latest_checkpoint
from latentprior.studies.priors_effects import effect_claims, write_effects
from latentprior.studies.priors_figures import COLUMNS, plots, sample_grids, write_tables
from latentprior.studies.priors_spec import Cell, ExPostPrior, PriorStudy, priors_at, record, run_name

__all__ = ["fit_or_reuse", "check_same_autoencoder", "seed_rows", "summary_rows", "temperature_rows",
           "write_outputs"]

def fit_or_reuse(run_dir: Path, entry: ExPostPrior, *, data_dir: str | None, device: str | None) -> None:
    """Fit ``entry`` into ``run_dir``, unless the prior of that name there has the same config and was fitted on the
    run's current checkpoint (then nothing is done); a stale one is replaced (with its records)."""
    from latentprior.rundir.prior_checkpoints import load_prior_checkpoint
    from latentprior.training.expost import fit_run_prior

    rd = RunDir(run_dir).prior(entry.name)
    if rd.checkpoint_index.is_file():
        ckpt = load_prior_checkpoint(rd)
        current = latest_checkpoint(run_dir)
        fitted_here = current is not None and current["sha256"] == ckpt["autoencoder"]["sha256"]
        if ckpt["config"] == entry.config and fitted_here:
            return
    fit_run_prior(run_dir, entry.config, entry.name, data_dir=data_dir, device=device, replace=True)


def _autoencoder_state(run_dir: Path) -> dict[str, torch.Tensor]:
    from latentprior.rundir.checkpoints import load_checkpoint

    state = load_checkpoint(run_dir)["model"]
    return {k: v for k, v in state.items() if k.split(".")[0] in ("encoder", "decoder", "variance")}


def check_same_autoencoder(reference: Path, run_dir: Path, beta: float) -> bool | None:
    """At β = 0: whether ``run_dir``'s encoder, decoder and likelihood weights equal ``reference``'s bit for bit
    (None at β > 0, where the prior trains the autoencoder, or for the reference run itself)."""
    if beta != 0 or Path(reference) == Path(run_dir):
        return None
    a, b = _autoencoder_state(reference), _autoencoder_state(run_dir)
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _seconds(study: PriorStudy, out: Path, prior: str, cell: Cell) -> float:
    """A joint prior: its run's training seconds (autoencoder and prior, both phases); an ex-post prior: the fit's
    (encoding the training set not included)."""
    if prior in study.joint:
        from latentprior.rundir.checkpoints import load_checkpoint
        return float(load_checkpoint(out / "runs" / run_name(prior, cell)).get("train_seconds", math.nan))
    from latentprior.rundir.prior_checkpoints import load_prior_checkpoint
    ae = RunDir(out / "runs" / run_name(study.autoencoder, cell))
    return float(load_prior_checkpoint(ae.prior(prior))["fit"]["seconds"])


def _value(rec: dict[str, Any] | None, key: str = "value") -> float:
    v = None if rec is None else rec.get(key)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan


def seed_rows(study: PriorStudy, out: Path, same: dict[tuple[str, Cell], bool | None]) -> list[dict[str, Any]]:
    """One row per (prior, latent dim, β, seed), every value as its record holds it."""
    rows = []
    for cell in study.cells():
        for name, label, fit in priors_at(study, cell.beta):
            pr = record(study, out, name, cell, "pr")
            fid, recon = _value(record(study, out, name, cell, "fid")), _value(record(study, out, name, cell,
                                                                                        "recon_fid"))
            rows.append({"prior": name, "label": label, "fit": fit, "latent_dim": cell.dim, "beta": cell.beta,
                         "seed": cell.seed, "fid": fid, "recon_fid": recon, "fid_ratio": fid / recon,
                         "precision": _value(pr, "precision"), "recall": _value(pr, "recall"),
                         "prior_nll": _value(record(study, out, name, cell, "prior_nll")),
                         "prior_s": _seconds(study, out, name, cell),
                         "same_autoencoder": same.get((name, cell)) if fit == "joint" else None})
    return rows


def _mean_std(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else math.nan


def summary_rows(rows: list[dict[str, Any]], eval_n: int, keys: tuple[str, ...] = ("prior", "latent_dim", "beta"),
                 metrics: tuple[str, ...] = tuple(COLUMNS)) -> list[dict[str, Any]]:
    """Mean ± std over seeds of the rows sharing ``keys``, in first-seen order; ``model`` (the prior's label, a
    plot's legend), ``model_label``, ``n`` (seeds) and ``eval_n`` are the plot helpers' names
    (latentprior.reports.plots)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for key, members in groups.items():
        row: dict[str, Any] = dict(zip(keys, key, strict=True))
        row |= {"label": members[0]["label"], "fit": members[0].get("fit"), "model": members[0]["label"],
                "model_label": members[0]["label"], "seeds": [m["seed"] for m in members], "n": len(members),
                "eval_n": eval_n}
        same = {m.get("same_autoencoder") for m in members} - {None}
        row["same_autoencoder"] = None if not same else all(same)
        for m in metrics:
            row[f"{m}_mean"], row[f"{m}_std"] = _mean_std([r[m] for r in members])
        out.append(row)
    return out


def temperature_rows(study: PriorStudy, out: Path) -> list[dict[str, Any]]:
    """One row per (prior, latent dim, β, seed, τ) of the temperature sweep, τ = 1 included (the prior's own)."""
    rows = []
    for cell in study.cells():
        if cell.beta not in study.temperatures.betas:
            continue
        labels = {n: label for n, label, _ in priors_at(study, cell.beta)}
        for name in (n for n in study.temperatures.priors if n in labels):
            for tau in sorted({1.0, *study.temperatures.values}):
                pr = record(study, out, name, cell, "pr", tau)
                rows.append({"prior": name, "label": labels[name], "latent_dim": cell.dim, "beta": cell.beta,
                             "seed": cell.seed, "temperature": tau,
                             "fid": _value(record(study, out, name, cell, "fid", tau)),
                             "precision": _value(pr, "precision"), "recall": _value(pr, "recall")})
    return rows


def write_outputs(study: PriorStudy, out: Path, same: dict[tuple[str, Cell], bool | None], *,
                  data_dir: str | None, device: str | None) -> dict[str, Any]:
    """The tables, plots and grids of the study (module docstring); returns the summary rows and the files."""

    n = study.eval.n
    per_seed = seed_rows(study, out, same)
    summary = summary_rows(per_seed, n)
    temps = temperature_rows(study, out)
    temp_summary = summary_rows(temps, n, ("prior", "latent_dim", "beta", "temperature"),
                                ("fid", "precision", "recall"))
    dest = out / study.name  # the runs are shared between study files; each file's tables and figures are its own
    files = write_tables(study, dest, per_seed, summary, temps, temp_summary)
    files += write_effects(dest, n, effect_claims(per_seed, study.autoencoder))
    files += plots(study, dest, summary, temp_summary)
    files += sample_grids(study, out, dest, data_dir=data_dir, device=device)
    return {"rows": summary, "temperature_rows": temp_summary, "files": [str(f) for f in files]}
