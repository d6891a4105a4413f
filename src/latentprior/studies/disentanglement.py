"""``latentprior experiment disentanglement STUDY.yaml --out DIR``: the paper's Table 1 analogue, Figs. 6-8.

A study file names one run config that every model shares and the overrides of the five models it compares::

    run: {data: {name: mnist}, net: {width: 0.125}, model: {latent_dim: 64}, train: {epochs: 1}, ...}
    vae:       {prior.kind: normal, objective.beta: 1.0}                    # VAE, standard-normal prior
    beta_vae:  {prior.kind: normal, objective.beta: 25.0}                   # β-VAE
    factorvae: {prior.kind: normal, objective.kind: factorvae, objective.beta: 1.0, objective.tc_weight: 40.0}
    flow_b1:   {prior.kind: realnvp, objective.beta: 1.0}                   # flow prior, β = 1
    flow_b0:   {prior.kind: realnvp, objective.beta: 0.0}                   # flow prior, β = 0
    eval: {n: 1000, separability_n: 2000, ppl_n: 1000, seed: 0}            # an EvalConfig block
    study: {interpolation_model: flow_b0, attributes: [class_1, class_7, thick], direction_images: 64}
    interpolation: {prior.kind: realnvp, objective.beta: 0.0, model.reconstruction: pixel+perceptual}  # optional

Each model trains in ``DIR/<name>`` (resumed if interrupted, reused if finished) and is evaluated with the
registered metrics ``separability_zt``, ``ppl_zt`` and ``fid``, plus ``separability_z0`` and ``ppl_z0`` for a
flow prior (each reused when its eval file exists with the same sample count).
``DIR/table1.md`` and ``DIR/table1.csv`` hold the table, one row per model and, for a flow prior, one row per
space (z0: the flow's base space, zT: the encoder's space), next to the paper's CelebA values. The optional
``interpolation`` model (trained in ``DIR/interpolation``, not in the table) is the one Figs. 6 and 8 use when
``study.interpolation_model`` names it: the paper gives that model a perceptual reconstruction loss.
Figures (:mod:`latentprior.studies.disentanglement_figures`): ``fig7.png`` (samples and PCA feature discovery of every
model), ``fig8.png`` (rate of change along attribute directions, Z_0 vs Z_T, of the interpolation model) and
``fig6.png`` (its sequences).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentprior.config import Config, ConfigError, EvalConfig, config_from_dict, read_yaml
from latentprior.studies.common import eval_block, evaluate_or_reuse, model_configs, train_model

__all__ = ["MODELS", "PAPER", "METRIC_NAMES", "FLOW_METRICS", "StudySettings", "DisentanglementStudy",
           "study_from_dict", "load_study", "run_disentanglement", "table_rows"]

# name -> the row label of the paper's Table 1, in the table's order
MODELS = {"vae": "VAE (std. normal prior)", "beta_vae": "β-VAE", "factorvae": "FactorVAE",
          "flow_b1": "VAE (flow prior, β = 1)", "flow_b0": "VAE (flow prior, β = 0)"}
METRIC_NAMES = ("separability_zt", "ppl_zt", "fid")  # every model's
FLOW_METRICS = ("separability_z0", "ppl_z0")  # a flow prior's base space too
# The paper's Table 1 (CelebA 64x64): (model, space) -> separability, PPL; FID is one per model.
PAPER = {("vae", ""): (2.14, 1139, 41.4), ("beta_vae", ""): (2.09, 1324, 82.7), ("factorvae", ""): (2.32, 1339, 39.8),
         ("flow_b1", "z0"): (2.46, 1753, 38.7), ("flow_b1", "zT"): (1.68, 1173, 38.7),
         ("flow_b0", "z0"): (2.82, 1933, 33.1), ("flow_b0", "zT"): (1.67, 1076, 33.1)}
EXTRA = "interpolation"  # the optional model of Figs. 6 and 8 alone
_KEYS = {"run", *MODELS, EXTRA, "eval", "study"}


@dataclass(frozen=True)
class StudySettings:
    """What the figures use: the interpolation model, the attributes of Figs. 6 and 8, and their sizes.

    ``attributes``: at least three names of the run's attribute set (empty: its first three).
    ``direction_codes``: training images encoded for the attribute directions and the PCA of q(z).
    ``direction_images``: images without the attribute that start a sequence (the paper: 5000).
    """

    interpolation_model: str = "flow_b0"
    attributes: tuple[str, ...] = ()
    attribute_kind: str = "default"
    direction_codes: int = 10000
    direction_images: int = 5000
    steps: int = 16
    grid_images: int = 2
    samples: int = 8
    pca_steps: int = 7

    def __post_init__(self) -> None:
        if self.interpolation_model not in (*MODELS, EXTRA):
            raise ConfigError(f"study.interpolation_model: '{self.interpolation_model}' is not one of "
                              f"{[*MODELS, EXTRA]}")
        if self.attributes and len(self.attributes) < 3:
            raise ConfigError(f"study.attributes: Fig. 8 needs at least 3 attributes, got {list(self.attributes)}")
        for k in ("direction_codes", "direction_images", "grid_images", "samples", "pca_steps"):
            if getattr(self, k) < 1:
                raise ConfigError(f"study.{k} must be >= 1, got {getattr(self, k)}")
        if self.steps < 2:
            raise ConfigError(f"study.steps must be >= 2, got {self.steps}")


@dataclass(frozen=True)
class DisentanglementStudy:
    """The resolved run config of each model (in table order, then the optional interpolation model), the
    evaluation settings and the figures'."""

    configs: dict[str, Config]
    eval: EvalConfig
    study: StudySettings


def study_from_dict(data: Any, where: str = "study") -> DisentanglementStudy:
    """Validate a study mapping (see the module docstring); every error is a one-line :class:`ConfigError`."""
    from latentprior.config import section_from_dict

    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with keys {sorted(_KEYS)}")
    unknown, missing = sorted(set(data) - _KEYS), [m for m in ("run", *MODELS) if m not in data]
    if unknown or missing:
        raise ConfigError(f"{where}: unknown key(s) {unknown}, missing key(s) {missing}; the keys are "
                          f"{sorted(_KEYS)} (run and every model are required)")
    base = config_from_dict(data["run"])
    configs = model_configs(base, data, [*MODELS, EXTRA] if EXTRA in data else MODELS, where)
    if isinstance(data.get("eval"), dict) and "metrics" in data["eval"]:  # run_disentanglement sets them
        raise ConfigError(f"{where}: eval.metrics is fixed by the study ({', '.join(METRIC_NAMES + FLOW_METRICS)}"
                          "); leave it out")
    evals = eval_block(data, {"metrics": list(METRIC_NAMES)}, where)
    study = section_from_dict(StudySettings, data.get("study"), "study")
    if study.interpolation_model not in configs:
        raise ConfigError(f"{where}: study.interpolation_model is '{EXTRA}' but the file has no '{EXTRA}' model")
    return DisentanglementStudy(configs, evals, study)


def load_study(path: str | Path) -> DisentanglementStudy:
    return study_from_dict(read_yaml(path, "study"), str(path))


def run_disentanglement(study: DisentanglementStudy, out: str | Path, *, data_dir: str | None = None,
                        weights_dir: str | None = None, cache_dir: str | None = None, device: str | None = None,
                        progress: bool = True) -> dict[str, Any]:
    """Train (or reuse) every model, evaluate it, write the table and the figures; returns the results."""
    from latentprior.studies.disentanglement_figures import study_figures

    out = Path(out)
    records: dict[str, dict[str, Any]] = {}
    for name, cfg in study.configs.items():
        run_dir = out / name
        cfg = train_model(cfg, run_dir, data_dir)
        if name != EXTRA:  # the interpolation model is in the figures only
            metrics = METRIC_NAMES + (FLOW_METRICS if cfg.prior.is_flow else ())
            records[name] = evaluate_or_reuse(run_dir, dataclasses.replace(study.eval, metrics=metrics),
                                              data_dir=data_dir, device=device, weights_dir=weights_dir,
                                              cache_dir=cache_dir, progress=progress)
    rows = table_rows(records)
    _write_tables(rows, out, study)
    figures = study_figures({name: out / name for name in study.configs}, study.study, out, labels=MODELS,
                            data_dir=data_dir, weights_dir=weights_dir, device=device, seed=study.eval.seed)
    return {"table": rows, "table_md": str(out / "table1.md"), "figures": {k: str(v) for k, v in figures.items()}}


def table_rows(records: dict[str, dict[str, dict]]) -> list[dict[str, Any]]:
    """One row per model, and per space (z0, zT) for a model with a flow prior, next to the paper's values."""
    rows = []
    for name, rec in records.items():
        for space in ("z0", "zT") if "separability_z0" in rec else ("",):
            key = (space or "zT").lower()
            paper = PAPER.get((name, space), (None, None, None))
            rows.append({"model": name, "space": space, "label": MODELS[name] + (f" ({space})" if space else ""),
                         "separability": rec[f"separability_{key}"]["value"], "ppl": rec[f"ppl_{key}"]["value"],
                         "fid": rec["fid"]["value"], "paper_separability": paper[0], "paper_ppl": paper[1],
                         "paper_fid": paper[2]})
    return rows


def _write_tables(rows: list[dict[str, Any]], out: Path, study: DisentanglementStudy) -> None:
    from latentprior.atomic import atomic_write_bytes
    from latentprior.reports.tables import fmt, write_csv

    write_csv(rows, out / "table1.csv")
    cfg, ev = study.configs["vae"], study.eval
    settings = (f"separability: {ev.separability_n} samples, attributes '{ev.attributes}'; PPL: {ev.ppl_n} paths, "
                f"epsilon {ev.ppl_epsilon:g}; FID: {ev.n} samples; seed {ev.seed}")
    lines = [f"Table 1 analogue on {cfg.data.name} ({settings}). Paper: CelebA 64x64, 40 attributes.", "",
             "| model | separability ↓ | PPL ↓ | FID ↓ | paper separability | paper PPL | paper FID |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['label']} | {fmt(r['separability'])} | {fmt(r['ppl'])} | {fmt(r['fid'])} | "
                     f"{fmt(r['paper_separability'])} | {fmt(r['paper_ppl'])} | {fmt(r['paper_fid'])} |")
    atomic_write_bytes(out / "table1.md", ("\n".join(lines) + "\n").encode())
