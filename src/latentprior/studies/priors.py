"""``latentprior experiment priors STUDY.yaml --out DIR``: the prior hole, prior family by prior family.

At β = 0 the autoencoder never sees the prior, so its samples are bounded by its reconstructions and by how well
the prior matches the aggregate posterior q(z). The study measures both for every prior family at every β: the
sample FID, the FID of the reconstructions with the same decoder (same n, reference and feature network), their
ratio, precision/recall, the prior's NLL of encoded test latents, and what fitting the prior cost. A study file::

    name: priors_mnist                         # DIR/<name>/ holds this file's tables and figures (default: priors)
    base: ../cpu/mnist_vae_flow.yaml           # a run config (relative to this file) or an inline mapping
    overrides: {net.arch: infogan, prior.init_rng: own, train.epochs: 10}
    betas: [0, 0.1, 1]
    seeds: [0]                                 # mean ± std over seeds
    latent_dims: [64]                          # optional (Fig. 5): default the base's
    joint:                                     # priors trained with the autoencoder by f: one run each
      realnvp: {label: "RealNVP (joint)", prior.kind: realnvp, train.prior_epochs: 5}
    autoencoder: realnvp                       # the joint run whose autoencoder the ex-post priors are fitted on
    expost:                                    # ExPostPriorConfig fields (+ label), fitted into that run
      gmm: {label: "GMM (ex post)", kind: gmm, components: 10}
      two_stage: {kind: two_stage, betas: [0]}  # betas: only at these of the study's β (default: all)
    eval: {n: 2000, n_ref: 2000}               # an EvalConfig block; the metrics are the study's
    temperatures: {values: [0.7, 0.85], priors: [realnvp, gmm], betas: [0]}   # optional: FID/P/R against tau

For every (latent dim, β, seed) each joint entry trains in ``DIR/runs/<entry>-dim<d>-beta<b>-seed<s>/`` (resumed if
interrupted, reused if finished), and each ex-post entry is fitted into the ``autoencoder`` entry's run as
``priors/<entry>/`` (reused while its config and the run's checkpoint are unchanged), so one autoencoder serves
every ex-post prior. At β = 0 a joint run's autoencoder does not depend on its prior when the runs draw the prior's
initial weights from their own stream (``prior.init_rng: own``): the study then checks, weight for weight, that
every β = 0 joint run holds the same autoencoder as the ``autoencoder`` entry's, and the table says so.

Outputs (:mod:`latentprior.studies.priors_outputs`), in ``DIR/<name>/`` so that several study files can share the
runs of one ``DIR`` (a subset at more seeds, say): ``priors_n<n>.md`` and ``.csv`` (one row per prior and setting,
mean ± std over seeds), ``priors_effects_n<n>.md`` (with several seeds: each prior's FID against the ``autoencoder``
entry's and the best against the runner-up, Welch's effect and verdict), ``fid_vs_beta.png`` (one line per prior),
``fid_vs_latent_dim.png`` with several latent sizes, ``temperature_n<n>.md`` and ``fid_vs_temperature.png``, and
sample grids ``samples_dim<d>_beta<b>.png``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from latentprior.studies.priors_spec import (
    SAMPLE_METRICS,
    Cell,
    ExPostPrior,
    JointPrior,
    PriorStudy,
    TemperatureSweep,
    load_prior_study,
    prior_study_from_dict,
    priors_at,
    record,
    run_name,
)

__all__ = ["PriorStudy", "JointPrior", "ExPostPrior", "TemperatureSweep", "Cell", "load_prior_study",
           "prior_study_from_dict", "run_priors", "run_name", "priors_at", "record", "SAMPLE_METRICS"]


def _metrics(cfg_has_density: bool, with_recon: bool) -> tuple[str, ...]:
    return SAMPLE_METRICS + (("recon_fid",) if with_recon else ()) + (("prior_nll",) if cfg_has_density else ())


def run_priors(study: PriorStudy, out: str | Path, *, data_dir: str | None = None, weights_dir: str | None = None,
               cache_dir: str | None = None, device: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Train (or reuse) every joint run, fit (or reuse) every ex-post prior, evaluate everything, write the tables,
    plots and grids; returns the rows and the files written."""
    from latentprior.studies.common import evaluate_or_reuse, train_model
    from latentprior.studies.priors_outputs import check_same_autoencoder, fit_or_reuse, write_outputs

    out = Path(out)
    kw = {"data_dir": data_dir, "device": device, "weights_dir": weights_dir, "cache_dir": cache_dir,
          "progress": progress}
    same: dict[tuple[str, Cell], bool | None] = {}
    for cell in study.cells():
        for name in study.joint:
            cfg = train_model(study.config(name, cell), out / "runs" / run_name(name, cell), data_dir)
            evaluate_or_reuse(out / "runs" / run_name(name, cell),
                              dataclasses.replace(study.eval, metrics=_metrics(cfg.prior.has_density, True)), **kw)
        ae_run = out / "runs" / run_name(study.autoencoder, cell)
        for name in study.joint:
            same[(name, cell)] = check_same_autoencoder(ae_run, out / "runs" / run_name(name, cell), cell.beta)
        for name, entry in study.expost.items():
            if not entry.at(cell.beta):
                continue
            fit_or_reuse(ae_run, entry, data_dir=data_dir, device=device)
            evaluate_or_reuse(ae_run, dataclasses.replace(study.eval, metrics=_metrics(True, False)), prior=name,
                              **kw)
        if cell.beta in study.temperatures.betas:
            for name in study.temperatures.priors:
                if name in study.expost and not study.expost[name].at(cell.beta):
                    continue
                run, prior = (out / "runs" / run_name(name, cell), None) if name in study.joint else (ae_run, name)
                for tau in study.temperatures.values:
                    ev = dataclasses.replace(study.eval, metrics=SAMPLE_METRICS, temperature=tau)
                    evaluate_or_reuse(run, ev, prior=prior, **kw)
    return write_outputs(study, out, same, data_dir=data_dir, device=device)
