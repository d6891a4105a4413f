"""Evaluate a finished run: ``latentprior eval RUN_DIR --metrics fid,pr,kid,nll`` (never trains).

For each metric of :data:`~latentprior.evaluation.registry.METRICS` asked for, ``RUN_DIR/eval/<metric>.json``
holds the value and its full protocol (network, weights hash, n, split, resize, seed, ...), written atomically.
Metrics that read features share one pass (see :mod:`~latentprior.evaluation.features`):

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

__all__ = ["UnknownMetricError", "evaluate_run", "make_feature_extractor"]

SAMPLES = "model.sample: decoder mean of prior draws, quantised to 8 bits"


def _inputs(model, cfg, eval_cfg: EvalConfig, data_dir, weights_dir, progress) -> EvalInputs:
    from latentprior.data import load_dataset

    test = load_dataset(cfg.data.name, "test", data_dir if data_dir is not None else cfg.data.dir,
                        verify=cfg.data.verify)
    if uses_reference(eval_cfg.metrics):  # as a sweep checks it: a protocol the data can supply
        eval_cfg.check_test_set(cfg.data.name, len(test))
    n_ref = min(eval_cfg.n_ref or eval_cfg.n, len(test))
    protocol = {"dataset": cfg.data.name, "split": "test", "n": eval_cfg.n, "n_ref": n_ref,
                "n_ref_asked": eval_cfg.n_ref, "seed": eval_cfg.seed,
                "reference": f"first {n_ref} test images in file order",
                "data_sha1": images_sha1(test.images[:n_ref])}
    device = next(iter(model.parameters())).device
    return EvalInputs(model, cfg, test, n_ref, eval_cfg, protocol, device,
                      weights_dir=None if weights_dir is None else str(weights_dir), progress=progress)


def _feature_pass(x: EvalInputs, names: tuple[str, ...], cache_dir) -> float:
    """Fill ``x.real``/``x.fake`` when a metric in ``names`` reads features; returns the seconds it took."""
    reads = {METRICS[m].reads for m in names}
    if not reads & {"statistics", "features"}:
        return 0.0
    t0 = time.perf_counter()
    keep, bs, n = "features" in reads, x.eval.batch_size, x.eval.n
    extractor = make_feature_extractor(x.device)
    if x.progress:  # say how long before a pass that may take minutes on a CPU
        refs = x.test.images[:x.n_ref]
        cached = reference_cached(refs, extractor, dataset=x.protocol["dataset"], split="test", keep=keep,
                                  cache_dir=cache_dir, data_sha1=x.protocol["data_sha1"])
        announce(extractor, refs, n, 0 if cached else x.n_ref)
    x.real = reference_features(x.test.images[:x.n_ref], extractor, dataset=x.protocol["dataset"], split="test",
                                keep=keep, cache_dir=cache_dir, batch_size=bs, progress=x.progress,
                                data_sha1=x.protocol["data_sha1"])
    x.fake = extract(generated_images(x.model, n, x.eval.seed, bs), extractor, keep=keep, total=n,
                     desc="generated features", progress=x.progress)
    x.feature_protocol = x.protocol | extractor.protocol() | {"samples": SAMPLES}
    return time.perf_counter() - t0


def evaluate_run(run_dir: str | os.PathLike[str], eval_cfg: EvalConfig | None = None, *,
                 data_dir: str | None = None, device: str | torch.device | None = None,
                 weights_dir: str | os.PathLike[str] | None = None, cache_dir: str | None = None,
                 progress: bool = True) -> dict[str, dict]:
    """Compute ``eval_cfg.metrics`` for the run; write each record and return ``{metric: record}``.

    ``data_dir`` overrides the run's configured data dir; ``device=None`` uses a GPU when present;
    ``weights_dir`` holds the LPIPS trunk files (default ``$LATENTPRIOR_WEIGHTS_DIR``); ``cache_dir`` the
    reference-feature cache (default ``$LATENTPRIOR_CACHE_DIR``). Every metric is checked against the run
    before any is computed, so a refusal leaves no file behind.
    """
    from latentprior.models.load import load_run

    eval_cfg = eval_cfg if eval_cfg is not None else EvalConfig()
    names = check_metrics(eval_cfg.metrics)
    eval_cfg = dataclasses.replace(eval_cfg, metrics=names)
    run_dir = RunDir(run_dir)
    model, cfg = load_run(run_dir, device=device)
    inputs = _inputs(model, cfg, eval_cfg, data_dir, weights_dir, progress)
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
        record |= {"elapsed_s": round(spent, 3), "run_dir": str(run_dir.path), "results": list(METRICS[m].results)}
        write_eval_record(run_dir, m, record)
        results[m] = record
    return results
