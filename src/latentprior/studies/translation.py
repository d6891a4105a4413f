"""``latentprior experiment conditional TASK.yaml --out DIR [--seeds 0,1,2]``: the paper's Table 2 analogue.

A task file names one conditional run config and the overrides of the two models it compares::

    run: {data: {name: mnist, condition: downsample7}, net: {arch: unet, width: 0.25},
          model: {posterior: unit}, objective: {kind: cvae, adam_beta1: 0.5, adam_beta2: 0.9}, ...}
    original: {prior.kind: normal, objective.beta: 1.0, objective.kl_anneal_end: 700}  # the Variational U-Net
    proposed: {prior.kind: realnvp, objective.beta: 0.0}                                # flow p(z|y), no KL
    eval: {n: 1000, lpips_pairs: 300, seed: 0}
    grid: {conditions: 8, samples: 4}
    seeds: [0, 1, 2]                                                                    # optional

Each model trains in ``DIR/<name>`` (resumed if interrupted, reused if finished) and is evaluated with the
registered conditional metrics (by default ``cond_fid``, ``cond_mse``, ``cond_lpips``; ``eval.metrics`` may
add ``cond_z_share``; reused when their eval files exist at the same n). ``DIR/table.md`` and ``DIR/table.csv``
hold the table, ``DIR/grid.png`` the samples: per row, condition | original image | samples of the original
model | samples of the proposed model.

With a seed list (the file's ``seeds`` or ``--seeds``), each seed k is such a study in ``DIR/seed<k>``
(:mod:`latentprior.studies.replicates`), and ``DIR/table_seeds.md`` / ``.csv`` hold each metric's
mean ± std over the seeds, ``DIR/claims.md`` / ``claims.json`` the verdicts on the paper's claims
(:mod:`latentprior.studies.verdicts`): the proposed model is more diverse, its samples depend more on z, and its
quality is not worse.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from latentprior.atomic import atomic_write_bytes
from latentprior.config import Config, ConfigError, EvalConfig, config_from_dict, read_yaml
from latentprior.studies.common import eval_block, evaluate_or_reuse, model_configs, train_model
from latentprior.studies.replicates import (
    SEED_KEY,
    chosen_seeds,
    parse_seeds,
    run_replicates,
    summarise,
    summary_rows,
)
from latentprior.studies.verdicts import Claim, claims_markdown

__all__ = ["ConditionalTask", "GridSpec", "load_task", "task_from_dict", "run_conditional", "sample_grid",
           "METRIC_NAMES", "ARMS", "COLUMNS", "task_claims"]

ARMS = ("original", "proposed")
METRIC_NAMES = ("cond_fid", "cond_mse", "cond_lpips")
# the paper's Table 2 (DeepFashion, Variational U-Net vs. conditional flow prior), for the table's note
PAPER = {"original": {"cond_lpips": 0.184, "is": 2.63}, "proposed": {"cond_lpips": 0.236, "is": 2.70}}
_KEYS = {"run", *ARMS, "eval", "grid", SEED_KEY}
# table column -> (metric, its result field): the rows read these from each model's eval records
COLUMNS = {"fid": ("cond_fid", "value"), "recon_mse": ("cond_mse", "value"), "lpips_diversity": ("cond_lpips", "value"),
           "lpips_std_err": ("cond_lpips", "std_err"), "z_share": ("cond_z_share", "value")}
# the columns summarised over seeds, with their headers
SEED_COLUMNS = {"fid": "FID ↓", "recon_mse": "reconstruction MSE ↓", "lpips_diversity": "LPIPS diversity ↑",
                "z_share": "z share ↑"}


@dataclass(frozen=True)
class GridSpec:
    """The sample grid: rows (test conditions) and samples per model in each row."""

    conditions: int = 8
    samples: int = 4

    def __post_init__(self) -> None:
        if self.conditions < 1 or self.samples < 1:
            raise ConfigError(f"grid.conditions and grid.samples must be >= 1, got {self.conditions}, "
                              f"{self.samples}")


@dataclass(frozen=True)
class ConditionalTask:
    """The resolved run config of each model, the evaluation settings and the grid."""

    configs: dict[str, Config]
    eval: EvalConfig
    grid: GridSpec
    seeds: tuple[int, ...] | None = None  # the file's seed list; None: one study in DIR itself


def task_from_dict(data: Any, where: str = "task") -> ConditionalTask:
    """Validate a task mapping (see the module docstring); every error is a one-line :class:`ConfigError`."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with keys {sorted(_KEYS)}")
    unknown = sorted(set(data) - _KEYS)
    if unknown or "run" not in data:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(_KEYS)} ('run' is required)")
    base = config_from_dict(data["run"])
    if base.data.condition == "none":
        raise ConfigError(f"{where}: run.data.condition must name a condition for a conditional experiment")
    configs = model_configs(base, data, ARMS, where)
    grid = data.get("grid") or {}
    if not isinstance(grid, dict) or set(grid) - {"conditions", "samples"}:
        raise ConfigError(f"{where}: grid takes the keys 'conditions' and 'samples', got {grid!r}")
    return ConditionalTask(configs, eval_block(data, {"metrics": list(METRIC_NAMES)}, where), GridSpec(**grid),
                           parse_seeds(data.get(SEED_KEY), f"{where}: {SEED_KEY}"))


def load_task(path: str | Path) -> ConditionalTask:
    return task_from_dict(read_yaml(path, "task"), str(path))


def run_conditional(task: ConditionalTask, out: str | Path, *, seeds: tuple[int, ...] | None = None,
                    data_dir: str | None = None, weights_dir: str | None = None, cache_dir: str | None = None,
                    device: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Train (or reuse) both models, evaluate them, write the table and the grid; returns the results.

    ``seeds`` (else the task's own list): one such study per seed in ``out/seed<k>``, then the mean ± std table
    and the claims' verdicts in ``out``."""
    out, kw = Path(out), dict(data_dir=data_dir, weights_dir=weights_dir, cache_dir=cache_dir, device=device,
                              progress=progress)
    seeds = chosen_seeds(task.seeds, seeds)
    if seeds is None:
        return _run_one(task, out, **kw)
    per_seed = run_replicates(task, out, seeds, _run_one, ARMS[0], **kw)
    rows = summary_rows({k: r["table"] for k, r in per_seed.items()}, ("model",), tuple(SEED_COLUMNS))
    claims = task_claims({k: r["table"] for k, r in per_seed.items()})
    _write_seed_tables(rows, claims, out, task)
    return {"table": rows, "table_md": str(out / "table_seeds.md"), "claims": [c.record() for c in claims],
            "seeds": {k: r["table_md"] for k, r in per_seed.items()}}


def _run_one(task: ConditionalTask, out: Path, *, data_dir, weights_dir, cache_dir, device,
             progress) -> dict[str, Any]:
    results: dict[str, dict[str, Any]] = {}
    for arm, cfg in task.configs.items():
        run_dir = out / arm
        cfg = train_model(cfg, run_dir, data_dir)
        records = evaluate_or_reuse(run_dir, task.eval, data_dir=data_dir, device=device, weights_dir=weights_dir,
                                    cache_dir=cache_dir, progress=progress)
        results[arm] = {"run_dir": str(run_dir), "config": cfg, "metrics": records}
    rows = _rows(results)
    _write_tables(rows, out, task)
    grid = _sample_grid(results, task, out / "grid.png", data_dir, device)
    return {"table": rows, "table_md": str(out / "table.md"), "grid": str(grid)}


def _rows(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per model: its prior, β and the COLUMNS its evaluated metrics give (None for the others)."""
    rows = []
    for arm, r in results.items():
        cfg, rec = r["config"], r["metrics"]
        rows.append({"model": arm, "prior": cfg.prior.kind, "beta": cfg.objective.beta}
                    | {col: rec[m].get(field) if m in rec else None for col, (m, field) in COLUMNS.items()})
    return rows


def task_claims(tables: dict[int, list[dict[str, Any]]]) -> list[Claim]:
    """The paper's Table 2 claims, proposed (a) against original (b), from each seed's table rows."""
    def side(arm: str, col: str):
        return summarise(next(r[col] for r in rows if r["model"] == arm) for rows in tables.values())

    specs = [("the proposed model's samples are more diverse", "lpips_diversity", "cond_lpips", "higher",
              "LPIPS 0.184 -> 0.236"),
             ("its samples depend more on z (within- over between-condition LPIPS)", "z_share", "cond_z_share",
              "higher", ""),
             ("its sample quality is not worse (a lower FID)", "fid", "cond_fid", "lower",
              "IS 2.63 -> 2.70, 'quality not affected'")]
    claims = []
    for text, col, metric, better, paper in specs:
        a, b = side("proposed", col), side("original", col)
        if a.n and b.n:  # a metric the task did not evaluate gives no claim
            claims.append(Claim(text, metric, better, "proposed", a, "original", b, paper))
    return claims


def _write_tables(rows: list[dict[str, Any]], out: Path, task: ConditionalTask) -> None:
    from latentprior.formatting import fmt_mean_std
    from latentprior.reports.tables import fmt, write_csv

    write_csv(rows, out / "table.csv")
    share = any(r["z_share"] is not None for r in rows)
    lines = [_title(task), "",
             "| model | prior | β | FID ↓ | reconstruction MSE ↓ | LPIPS diversity ↑ |" + (" z share ↑ |" * share),
             "|---|---|---|---|---|---|" + "---|" * share]
    for r in rows:
        lines.append(f"| {r['model']} | {r['prior']} | {fmt(r['beta'])} | {fmt(r['fid'])} | {fmt(r['recon_mse'])} "
                     f"| {fmt_mean_std(r['lpips_diversity'], r['lpips_std_err'])} |"
                     + (f" {fmt(r['z_share'])} |" if share else ""))
    lines += ["", _PAPER_NOTE]
    atomic_write_bytes(out / "table.md", ("\n".join(lines) + "\n").encode())


_PAPER_NOTE = ("Paper (DeepFashion, Table 2): LPIPS diversity 0.184 (Variational U-Net) -> 0.236 (conditional "
               "flow prior, no KL term); IS 2.63 -> 2.70.")


def _title(task: ConditionalTask) -> str:
    cfg = next(iter(task.configs.values()))
    return (f"Conditional generation on {cfg.data.name}, condition `{cfg.data.condition}` "
            f"(FID: {task.eval.n} test conditions, one sample each; diversity: LPIPS-{task.eval.lpips_net} "
            f"between two samples for each of {task.eval.lpips_pairs} test conditions)")


def _write_seed_tables(rows: list[dict[str, Any]], claims: list[Claim], out: Path, task: ConditionalTask) -> None:
    import json

    from latentprior.reports.tables import write_csv
    from latentprior.studies.replicates import mean_std_text

    write_csv(rows, out / "table_seeds.csv")
    cols = [c for c in SEED_COLUMNS if any(r[f"{c}_mean"] is not None for r in rows)]
    lines = [_title(task) + "; mean ± std over seeds", "",
             "| model | seeds | " + " | ".join(SEED_COLUMNS[c] for c in cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    for r in rows:
        cells = " | ".join(mean_std_text(r[f"{c}_mean"], r[f"{c}_std"]) for c in cols)
        lines.append(f"| {r['model']} | {','.join(map(str, r['seeds']))} | {cells} |")
    lines += ["", _PAPER_NOTE, "", claims_markdown("Claims (proposed vs original)", claims)]
    atomic_write_bytes(out / "table_seeds.md", ("\n".join(lines) + "\n").encode())
    atomic_write_bytes(out / "claims.md", claims_markdown(f"{_title(task)}: claims", claims).encode())
    atomic_write_bytes(out / "claims.json", (json.dumps([c.record() for c in claims], indent=1) + "\n").encode())


def _sample_grid(results: dict[str, dict[str, Any]], task: ConditionalTask, path: Path, data_dir, device) -> Path:
    from latentprior.data import load_dataset
    from latentprior.models.load import load_run

    models = [load_run(r["run_dir"], device=device or "cpu") for r in results.values()]
    cfg = models[0][1]
    test = load_dataset(cfg.data.name, "test", data_dir if data_dir is not None else cfg.data.dir,
                        verify=cfg.data.verify)
    x = test.batch(torch.arange(min(task.grid.conditions, len(test))))
    return sample_grid([m for m, _ in models], x, path, samples=task.grid.samples, seed=task.eval.seed)


@torch.no_grad()
def sample_grid(models: list, x: torch.Tensor, path: Path, *, samples: int, seed: int) -> Path:
    """Rows, one per real image x_i (K, C, H, W): condition y_i | x_i | ``samples`` draws of each model in turn."""
    from latentprior.evaluation.features import chunk_generator
    from latentprior.sampling.grid import save_image_grid

    x = x.to(next(models[0].parameters()).device)
    y = models[0].condition(x)
    columns = [y, x]
    for i, model in enumerate(models):
        g = chunk_generator(seed, i)  # one stream per model, fixed by the seed
        columns += [model.sample(x.shape[0], generator=g, y=y) for _ in range(samples)]
    images = torch.stack(columns, dim=1).flatten(0, 1)  # (K · columns, C, H, W), row-major
    return save_image_grid(images.cpu(), path, nrow=len(columns), scale=2)
