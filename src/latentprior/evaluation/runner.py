"""Evaluate a finished run (``latentprior eval RUN_DIR --metrics fid,pr,kid,nll``, :func:`evaluate_run`) or a model
object against reference images (:func:`evaluate_model`, which the first calls); evaluation never trains.

For each metric of :data:`~latentprior.evaluation.registry.METRICS` asked for, ``RUN_DIR/eval/<metric>.json``
holds the value and its full protocol (network, weights hash, n, split, resize, seed, ...), written atomically.
``--prior NAME`` evaluates a prior fitted into the run in place of its own (records in
``RUN_DIR/priors/NAME/eval/``), ``--temperature T`` draws the samples at temperature T (records in
``eval/temperature=T/``). Metrics that read features share one pass (see :mod:`~latentprior.evaluation.features`):

    generated_images(model, n, seed) ─► extract ─► (μ, Σ) [+ raw features] ─┐
                                                                            ├─► fid / pr / kid
    first n_ref test images ─────────► extract (cached by key) ──────────────┘
"""

from __future__ import annotations

import dataclasses
import os
import time

import torch

from latentprior.config import EvalConfig
from latentprior.errors import UserError
from latentprior.rundir import RunDir, write_eval_record

from .estimate import announce
from .features import (
    extract,
    generated_images,
    images_sha1,
    make_feature_extractor,
    reference_cached,
    reference_features,
)
from .inputs import EvalInputs
from .registry import METRICS, UnknownMetricError, check_condition, check_metrics, uses_reference

__all__ = ["UnknownMetricError", "TemperatureNotApplicable", "evaluate_run", "evaluate_model", "make_feature_extractor"]

SAMPLES = "model.sample: decoder mean of prior draws, quantised to 8 bits"


class TemperatureNotApplicable(ValueError, UserError):
    """A sampling temperature != 1 was asked of metrics that read no prior samples."""


def _inputs(model, cfg, test, eval_cfg: EvalConfig, dataset: str, weights_dir, progress) -> EvalInputs:
    if uses_reference(eval_cfg.metrics):  # as a sweep checks it: a protocol the data can supply
        eval_cfg.check_test_set(dataset, len(test))
    n_ref = min(eval_cfg.n_ref or eval_cfg.n, len(test))
    protocol = {"dataset": dataset, "split": test.split or "test", "n": eval_cfg.n, "n_ref": n_ref,
                "n_ref_asked": eval_cfg.n_ref, "seed": eval_cfg.seed,
                "reference": f"first {n_ref} test images in file order",
                "data_sha1": images_sha1(test.images[:n_ref])}
    device = next(iter(model.parameters())).device
    return EvalInputs(model, cfg, test, n_ref, eval_cfg, protocol, device,
                      weights_dir=None if weights_dir is None else str(weights_dir), progress=progress)


def _feature_pass(x: EvalInputs, names: tuple[str, ...], cache_dir) -> float:
    """Fill ``x.real`` (and ``x.fake``, the samples' side) when a metric in ``names`` reads features; returns the
    seconds it took."""
    reads = {METRICS[m].reads for m in names}
    if not reads & {"statistics", "features", "reference"}:
        return 0.0
    t0 = time.perf_counter()
    keep, bs, n = "features" in reads, x.eval.batch_size, x.eval.n
    x.extractor = extractor = make_feature_extractor(x.device)
    if x.progress:  # say how long before a pass that may take minutes on a CPU
        refs = x.test.images[:x.n_ref]
        cached = reference_cached(refs, extractor, dataset=x.protocol["dataset"], split="test", keep=keep,
                                  cache_dir=cache_dir, data_sha1=x.protocol["data_sha1"])
        announce(extractor, refs, n, 0 if cached else x.n_ref)  # n samples, or n reconstructions (recon_fid)
    x.real = reference_features(x.test.images[:x.n_ref], extractor, dataset=x.protocol["dataset"], split="test",
                                keep=keep, cache_dir=cache_dir, batch_size=bs, progress=x.progress,
                                data_sha1=x.protocol["data_sha1"])
    if reads & {"statistics", "features"}:
        x.fake = extract(generated_images(x.model, n, x.eval.seed, bs, x.eval.temperature), extractor, keep=keep,
                         total=n, desc="generated features", progress=x.progress)
    x.feature_protocol = (x.protocol | extractor.protocol()
                          | {"samples": SAMPLES, "temperature": x.eval.temperature, "prior": x.prior_name or "own"})
    return time.perf_counter() - t0


def _check_temperature(names: tuple[str, ...], temperature: float) -> None:
    untempered = [m for m in names if not METRICS[m].tempered]
    if temperature != 1.0 and untempered:
        raise TemperatureNotApplicable(
            f"eval.temperature = {temperature:g} tempers prior samples, which {', '.join(untempered)} do not read; "
            f"evaluate them at temperature 1 (tempered: {', '.join(m for m, e in METRICS.items() if e.tempered)})")


def evaluate_run(run_dir: str | os.PathLike[str], eval_cfg: EvalConfig | None = None, *,
                 data_dir: str | None = None, device: str | torch.device | None = None,
                 weights_dir: str | os.PathLike[str] | None = None, cache_dir: str | None = None,
                 progress: bool = True, prior: str | None = None) -> dict[str, dict]:
    """Compute ``eval_cfg.metrics`` for the run; write each record and return ``{metric: record}``.

    ``data_dir`` overrides the run's configured data dir; ``device=None`` uses a GPU when present;
    ``weights_dir`` holds the LPIPS trunk files (default ``$LATENTPRIOR_WEIGHTS_DIR``); ``cache_dir`` the
    reference-feature cache (default ``$LATENTPRIOR_CACHE_DIR``). ``prior``: the name of a prior fitted into the
    run (``RUN_DIR/priors/<name>/``), used in place of the run's own; its records go to that folder's ``eval/``.
    Records of samples drawn at ``eval_cfg.temperature`` != 1 go to ``eval/temperature=<t>/``. Every metric is
    checked against the run before any is computed, so a refusal leaves no file behind.
    """
    from latentprior.data import load_split
    from latentprior.models.expost import use_run_prior
    from latentprior.models.load import load_run

    _check_temperature(check_metrics((eval_cfg or EvalConfig()).metrics),  # before the model and data are loaded
                       (eval_cfg or EvalConfig()).temperature)
    model, cfg = load_run(run_dir, device=device)
    use_run_prior(model, run_dir, prior)
    test = load_split(cfg.data, "test", data_dir)
    return evaluate_model(model, eval_cfg, reference=test, run_config=cfg, run_dir=run_dir, data_dir=data_dir,
                          weights_dir=weights_dir, cache_dir=cache_dir, progress=progress, prior=prior)


def evaluate_model(model, eval_cfg: EvalConfig | None = None, *, reference, run_config=None,
                   run_dir: str | os.PathLike[str] | None = None, data_dir: str | None = None,
                   weights_dir: str | os.PathLike[str] | None = None, cache_dir: str | None = None,
                   progress: bool = True, prior: str | None = None) -> dict[str, dict]:
    """Compute ``eval_cfg.metrics`` for a model object against ``reference`` (an :class:`ImageDataset` whose
    first ``n_ref`` images are the reference side); return ``{metric: record}``, and write each record into
    ``run_dir`` when one is given.

    ``run_config``: the run's :class:`~latentprior.config.Config` for the metrics that read it (a condition,
    the training split of separability); None for a model without one. The reference's name is the protocol's
    dataset (a configured dataset's name, ``images:<content hash>`` for a folder) and enters the feature cache key
    with the images' bytes. ``prior``: the name of the prior fitted into ``run_dir`` that ``model`` carries in
    place of its own (:func:`~latentprior.models.expost.use_run_prior`); its records go to
    ``RUN_DIR/priors/<name>/eval/``. Records of samples drawn at ``eval_cfg.temperature`` != 1 go to
    ``eval/temperature=<t>/``.
    """
    eval_cfg = eval_cfg if eval_cfg is not None else EvalConfig()
    names = check_metrics(eval_cfg.metrics)
    _check_temperature(names, eval_cfg.temperature)
    eval_cfg = dataclasses.replace(eval_cfg, metrics=names)
    rd = None if run_dir is None else RunDir(run_dir)
    if prior is not None and rd is None:
        raise UserError(f"evaluating the fitted prior '{prior}' needs the run directory it was fitted into (run_dir)")
    target = rd if prior is None else rd.prior(prior)
    dataset = run_config.data.name if run_config is not None and run_config.data.name not in (
        "images", "custom") else (reference.name or "custom")
    inputs = _inputs(model, run_config, reference, eval_cfg, dataset, weights_dir, progress)
    inputs.prior_name = prior
    inputs.cache_dir = cache_dir  # for metrics with their own reference pass (cond_fid)
    inputs.data_dir = None if data_dir is None else str(data_dir)  # the training split, for separability
    for m in names:
        check_condition(m, model)
        if METRICS[m].check is not None:
            METRICS[m].check(inputs)
    shared_s = _feature_pass(inputs, names, cache_dir)
    results: dict[str, dict] = {}
    for m in names:
        t0 = time.perf_counter()
        record = {"metric": m, **METRICS[m].compute(inputs)}
        # A feature metric's cost includes the pass it shares: what it would take alone.
        spent = time.perf_counter() - t0 + (shared_s if METRICS[m].reads != "model" else 0.0)
        where = {} if rd is None else {"run_dir": str(rd.path)}
        record |= {"elapsed_s": round(spent, 3), **where, "results": list(METRICS[m].results)}
        if prior is not None:
            record["prior"] = prior
        if target is not None:
            write_eval_record(target, m, record, temperature=eval_cfg.temperature)
        results[m] = record
    return results
