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
    seeds: [0, 1, 2]                                                        # optional (or --seeds 0,1,2)

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

With a seed list, each seed k is such a study in ``DIR/seed<k>`` (:mod:`latentprior.studies.replicates`), and
``DIR/table1_seeds.md`` / ``.csv`` hold every value's mean ± std over the seeds (with the rate of change of
Fig. 8 as max/min of its median step, per attribute and space, from each seed's ``fig8.json``), and
``DIR/claims.md`` / ``claims.json`` the verdicts on the paper's claims (:mod:`latentprior.studies.verdicts`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentprior.config import Config, ConfigError, EvalConfig, config_from_dict, read_yaml
from latentprior.studies.common import eval_block, evaluate_or_reuse, model_configs, train_model
from latentprior.studies.replicates import (
    SEED_KEY,
    Summary,
    chosen_seeds,
    mean_std_text,
    parse_seeds,
    run_replicates,
    summarise,
    summary_rows,
)
from latentprior.studies.verdicts import Claim, claims_markdown

__all__ = ["MODELS", "PAPER", "METRIC_NAMES", "FLOW_METRICS", "StudySettings", "DisentanglementStudy",
           "study_from_dict", "load_study", "run_disentanglement", "table_rows", "flatness_rows", "study_claims"]

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
_KEYS = {"run", *MODELS, EXTRA, "eval", "study", SEED_KEY}
SPACES = {"base": "z0", "z": "zT"}  # fig8.json's space names -> the table's


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
    seeds: tuple[int, ...] | None = None  # the file's seed list; None: one study in DIR itself


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
    return DisentanglementStudy(configs, evals, study, parse_seeds(data.get(SEED_KEY), f"{where}: {SEED_KEY}"))


def load_study(path: str | Path) -> DisentanglementStudy:
    return study_from_dict(read_yaml(path, "study"), str(path))


def run_disentanglement(study: DisentanglementStudy, out: str | Path, *, seeds: tuple[int, ...] | None = None,
                        data_dir: str | None = None, weights_dir: str | None = None, cache_dir: str | None = None,
                        device: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Train (or reuse) every model, evaluate it, write the table and the figures; returns the results.

    ``seeds`` (else the study's own list): one such study per seed in ``out/seed<k>``, then the mean ± std
    tables and the claims' verdicts in ``out``."""
    out, kw = Path(out), dict(data_dir=data_dir, weights_dir=weights_dir, cache_dir=cache_dir, device=device,
                              progress=progress)
    seeds = chosen_seeds(study.seeds, seeds)
    if seeds is None:
        return _run_one(study, out, **kw)
    per_seed = run_replicates(study, out, seeds, _run_one, next(iter(MODELS)), **kw)
    tables = {k: r["table"] for k, r in per_seed.items()}
    flatness = {k: _read_flatness(Path(r["figures"]["fig8_json"])) for k, r in per_seed.items()}
    rows = summary_rows(tables, ("model", "space", "label"), ("separability", "ppl", "fid"))
    flat = summary_rows({k: flatness_rows(f) for k, f in flatness.items()}, ("attribute", "space"), ("flatness",))
    claims = study_claims(tables, flatness, study.study.interpolation_model)
    _write_seed_tables(rows, flat, claims, out, study)
    return {"table": rows, "flatness": flat, "table_md": str(out / "table1_seeds.md"),
            "claims": [c.record() for c in claims], "seeds": {k: r["table_md"] for k, r in per_seed.items()}}


def _run_one(study: DisentanglementStudy, out: Path, *, data_dir, weights_dir, cache_dir, device,
             progress) -> dict[str, Any]:
    from latentprior.studies.disentanglement_figures import study_figures

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


def _read_flatness(path: Path) -> dict[str, dict[str, float]]:
    """attribute -> {space ('z0' | 'zT') -> max/min of the median step} from a replicate's fig8.json."""
    import json

    data = json.loads(path.read_text())
    return {attr: {SPACES[space]: r["max_over_min_median"] for space, r in by_space.items()}
            for attr, by_space in data.items()}


def flatness_rows(flatness: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """One replicate's rate-of-change rows: per attribute and space, then the mean over the attributes."""
    rows = [{"attribute": a, "space": sp, "flatness": v} for a, by in flatness.items() for sp, v in by.items()]
    for space in ("z0", "zT"):
        values = [by[space] for by in flatness.values() if space in by]
        if values:
            rows.append({"attribute": "mean", "space": space, "flatness": sum(values) / len(values)})
    return rows


def study_claims(tables: dict[int, list[dict[str, Any]]], flatness: dict[int, dict[str, dict[str, float]]],
                 interpolation_model: str = "flow_b0") -> list[Claim]:
    """The paper's Table 1 / Fig. 8 claims from each seed's table rows and rates of change."""

    def get(model: str, space: str, col: str) -> Summary:
        return summarise(next((r[col] for r in rows if r["model"] == model and r["space"] in (space, "")), None)
                         for rows in tables.values())

    baselines = {m: get(m, "", "separability") for m in ("vae", "beta_vae", "factorvae")}
    best = min(baselines, key=lambda m: baselines[m].mean)  # the strongest fixed-prior competitor
    flat = {sp: summarise(next((r["flatness"] for r in flatness_rows(f) if r["attribute"] == "mean"
                                and r["space"] == sp), None) for f in flatness.values()) for sp in ("z0", "zT")}
    b0, b1 = "flow β = 0", "flow β = 1"
    return [
        Claim("β = 0 makes Z_T more linearly separable than β = 1", "separability", "lower",
              f"{b0} Z_T", get("flow_b0", "zT", "separability"), f"{b1} Z_T", get("flow_b1", "zT", "separability"),
              "1.67 vs 1.68"),
        Claim(f"the β = 0 flow's Z_T is more linearly separable than the best fixed-prior model ({MODELS[best]})",
              "separability", "lower", f"{b0} Z_T", get("flow_b0", "zT", "separability"), best, baselines[best],
              "1.67 vs 2.09 (β-VAE)"),
        Claim("the β = 0 flow's Z_T is more linearly separable than its Z_0", "separability", "lower",
              f"{b0} Z_T", get("flow_b0", "zT", "separability"), f"{b0} Z_0", get("flow_b0", "z0", "separability"),
              "1.67 vs 2.82"),
        Claim("β = 0 lowers the PPL of Z_T (vs β = 1)", "PPL", "lower", f"{b0} Z_T", get("flow_b0", "zT", "ppl"),
              f"{b1} Z_T", get("flow_b1", "zT", "ppl"), "1076 vs 1173"),
        Claim("the β = 0 flow's Z_T has a lower PPL than its Z_0", "PPL", "lower", f"{b0} Z_T",
              get("flow_b0", "zT", "ppl"), f"{b0} Z_0", get("flow_b0", "z0", "ppl"), "1076 vs 1933"),
        Claim("β = 0 improves sample quality (flow prior)", "FID", "lower", b0, get("flow_b0", "zT", "fid"), b1,
              get("flow_b1", "zT", "fid"), "33.1 vs 38.7"),
        Claim(f"Z_T changes at a steadier rate than Z_0 along attribute directions ({interpolation_model}; max/min "
              "of the median step, mean over the attributes; 1 = constant)", "rate of change", "lower", "Z_T",
              flat["zT"], "Z_0", flat["z0"], "Fig. 8, qualitative"),
    ]


def _write_seed_tables(rows: list[dict[str, Any]], flat: list[dict[str, Any]], claims: list[Claim], out: Path,
                       study: DisentanglementStudy) -> None:
    import json

    from latentprior.atomic import atomic_write_bytes
    from latentprior.reports.tables import fmt, write_csv

    write_csv(rows, out / "table1_seeds.csv")
    write_csv(flat, out / "rate_of_change_seeds.csv")
    cfg, ev = study.configs["vae"], study.eval
    title = (f"Table 1 analogue on {cfg.data.name}, mean ± std over seeds (separability: {ev.separability_n} "
             f"samples; PPL: {ev.ppl_n} paths{f' (adaptive to {ev.ppl_max_n})' if ev.ppl_max_n > ev.ppl_n else ''}; "
             f"FID: {ev.n} samples). Paper: CelebA 64x64, 40 attributes.")
    lines = [title, "", "| model | seeds | separability ↓ | PPL ↓ | FID ↓ | paper separability | paper PPL | "
             "paper FID |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        paper = PAPER.get((r["model"], r["space"]), (None, None, None))
        cells = " | ".join(mean_std_text(r[f"{c}_mean"], r[f"{c}_std"]) for c in ("separability", "ppl", "fid"))
        lines.append(f"| {r['label']} | {','.join(map(str, r['seeds']))} | {cells} | "
                     + " | ".join(fmt(v) for v in paper) + " |")
    lines += ["", f"Rate of change along attribute directions ({study.study.interpolation_model}): max/min of the "
              "median perceptual step of Fig. 8 (1 = constant), mean ± std over seeds", "",
              "| attribute | Z_0 | Z_T |", "|---|---|---|"]
    by_attr: dict[str, dict[str, str]] = {}
    for r in flat:
        by_attr.setdefault(r["attribute"], {})[r["space"]] = mean_std_text(r["flatness_mean"], r["flatness_std"])
    lines += [f"| {a} | {v.get('z0', '–')} | {v.get('zT', '–')} |" for a, v in by_attr.items()]
    lines += ["", claims_markdown("Claims", claims)]
    atomic_write_bytes(out / "table1_seeds.md", ("\n".join(lines) + "\n").encode())
    atomic_write_bytes(out / "claims.md", claims_markdown(f"{title} Claims", claims).encode())
    atomic_write_bytes(out / "claims.json", (json.dumps([c.record() for c in claims], indent=1) + "\n").encode())
