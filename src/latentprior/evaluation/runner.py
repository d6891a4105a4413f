"""Evaluate a finished run: ``latentprior eval RUN_DIR --metrics fid,pr,kid,nll`` (never trains).

For each metric, ``RUN_DIR/eval/<metric>.json`` holds the value and its full protocol (network, weights hash,
n, split, resize, seed, ...), written atomically. Feature metrics share one pass:

    model.sample ─► Inception features ─► streaming (μ, Σ) ─┐
                                  └─► raw features (pr, kid)  ├─► FID / precision-recall / KID
    test split ──► Inception features ─► cached (μ, Σ) [+ features] ─┘

The generated set depends on (seed, n) only: images are drawn in fixed chunks of ``SAMPLE_CHUNK``, each from
its own generator seeded by (seed, chunk index), so ``batch_size`` changes the speed, not the samples. The
reference set is the first min(n, |test|) test images in file order.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from latentprior.atomic import atomic_write_bytes
from latentprior.errors import UserError

from .cache import FeatureCache
from .frechet import fid_from_statistics
from .inception import InceptionFeatureExtractor
from .inception_score import UNAVAILABLE_MESSAGE, InceptionScoreUnavailable, inception_score
from .kid import kid
from .nll import NLLUnavailable, check_nll_supported, iw_log_likelihood
from .precision_recall import precision_recall
from .statistics import FeatureStatistics, StreamingMoments, iterate_features

__all__ = ["KNOWN_METRICS", "SAMPLE_CHUNK", "UnknownMetricError", "evaluate_run", "make_feature_extractor",
           "reference_statistics"]

KNOWN_METRICS = ("fid", "pr", "kid", "nll", "is")
FEATURE_METRICS = ("fid", "pr", "kid")
SAMPLE_CHUNK = 100
PR_K = 3


def make_feature_extractor(device: torch.device):
    """The images -> (B, 2048) features callable, with ``protocol() -> dict`` (a seam the tests replace)."""
    return InceptionFeatureExtractor(fast=True, device=device)


def _model_images(model, n: int, seed: int, batch_size: int) -> Iterator[Tensor]:
    """n generated images in batches of ``batch_size``; the images themselves depend only on (seed, n)."""
    pending: list[Tensor] = []
    have = 0
    for start in range(0, n, SAMPLE_CHUNK):
        g = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, start]).generate_state(1)[0]))
        pending.append(model.sample(min(SAMPLE_CHUNK, n - start), generator=g))
        have += pending[-1].shape[0]
        while have >= batch_size:
            cat = torch.cat(pending)
            yield cat[:batch_size]
            rest = cat[batch_size:]
            pending, have = ([rest] if rest.shape[0] else []), rest.shape[0]
    if have:
        yield torch.cat(pending)


def reference_statistics(images: Tensor, extractor, *, dataset: str, split: str, cache_dir=None,
                         batch_size: int = 100, need_features: bool = False, progress: bool = True,
                         data_sha1: str | None = None) -> tuple[FeatureStatistics, np.ndarray | None]:
    """Feature statistics (and, with ``need_features``, the raw (N, 2048) features) of reference ``images``
    (N, C, H, W) uint8, from the cache when an entry with the same key exists.

    The key covers everything that changes them: dataset, split, the images' bytes (sha1, computed here unless
    the caller already has it) and count, and the extractor's protocol (network, weights hash, resize).
    """
    if data_sha1 is None:
        data_sha1 = hashlib.sha1(images.contiguous().numpy().tobytes()).hexdigest()
    key = {"dataset": dataset, "split": split, "data_sha1": data_sha1, "count": images.shape[0]} | extractor.protocol()
    cache = FeatureCache(cache_dir)
    stats = cache.load_statistics(key)
    feats = cache.load_features(key) if need_features else None
    if stats is not None and (feats is not None or not need_features):
        return stats, feats
    moments, kept = StreamingMoments(key["feature_dim"]), []
    batches = (images[s:s + batch_size] for s in range(0, images.shape[0], batch_size))
    for f in iterate_features(batches, extractor, total=images.shape[0], desc="reference features",
                              progress=progress):
        moments.update(f)
        if need_features:
            kept.append(f.numpy())
    stats = moments.result()
    cache.save_statistics(key, stats)
    if need_features:
        feats = np.concatenate(kept)
        cache.save_features(key, feats)
    return stats, feats


def _write(run_dir: Path, metric: str, record: dict) -> None:
    data = (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()
    atomic_write_bytes(run_dir / "eval" / f"{metric}.json", data)


class UnknownMetricError(ValueError, UserError):
    """A metric name that :func:`evaluate_run` does not know."""


def _check_metrics(metrics: list[str], logits_net) -> list[str]:
    metrics = list(dict.fromkeys(m.strip().lower() for m in metrics if m.strip()))
    unknown = [m for m in metrics if m not in KNOWN_METRICS]
    if unknown or not metrics:
        raise UnknownMetricError(f"unknown metric(s) {unknown or metrics}; known: {', '.join(KNOWN_METRICS)}")
    if "is" in metrics and logits_net is None:
        raise InceptionScoreUnavailable(UNAVAILABLE_MESSAGE)
    return metrics


def evaluate_run(
    run_dir: Path,
    metrics: list[str],
    *,
    n: int = 10000,
    data_dir: str | None = None,
    batch_size: int = 100,
    device: str | None = None,
    nll_k: int = 100,
    seed: int = 0,
    logits_net=None,
    cache_dir: str | None = None,
    progress: bool = True,
) -> dict[str, dict]:
    """Compute ``metrics`` (subset of fid, pr, kid, nll, is) for the run; write and return their records.

    ``n`` generated images against min(n, |test|) test images (nll: on those test images, ``nll_k`` importance
    samples each). ``data_dir`` overrides the run's configured data dir; ``device=None`` uses a GPU when
    present. ``is`` requires ``logits_net`` (see :mod:`~latentprior.evaluation.inception_score`). Returns
    ``{metric: record}``, each record as written to ``run_dir/eval/<metric>.json``.
    """
    from latentprior.data import load_dataset
    from latentprior.training import load_run

    run_dir = Path(run_dir)
    metrics = _check_metrics(metrics, logits_net)
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    model, cfg = load_run(run_dir, device=device)
    if "nll" in metrics:
        check_nll_supported(model)
        if not getattr(model, "gaussian_encoder", True):
            raise NLLUnavailable("importance-weighted NLL needs a Gaussian encoder q(z|x); "
                                 "this run's encoder is deterministic")
    dev = next(iter(model.parameters())).device
    ds = load_dataset(cfg.data.name, "test", data_dir if data_dir is not None else cfg.data.dir,
                      verify=cfg.data.verify)
    n_ref = min(n, len(ds))
    ref_images = ds.images[:n_ref]  # (n_ref, C, H, W) uint8
    base = {"dataset": cfg.data.name, "split": "test", "n": n, "n_ref": n_ref, "seed": seed,
            "reference": f"first {n_ref} test images in file order",
            "data_sha1": hashlib.sha1(ref_images.contiguous().numpy().tobytes()).hexdigest()}
    results: dict[str, dict] = {}

    wanted = [m for m in FEATURE_METRICS if m in metrics]
    if wanted:
        t0 = time.perf_counter()
        extractor = make_feature_extractor(dev)
        fproto = extractor.protocol()
        need_raw = "pr" in wanted or "kid" in wanted
        ref_stats, ref_feats = reference_statistics(ref_images, extractor, dataset=cfg.data.name, split="test",
                                                    cache_dir=cache_dir, batch_size=batch_size,
                                                    need_features=need_raw, progress=progress,
                                                    data_sha1=base["data_sha1"])
        moments, kept = StreamingMoments(fproto["feature_dim"]), []
        for f in iterate_features(_model_images(model, n, seed, batch_size), extractor, total=n,
                                  desc="generated features", progress=progress):
            moments.update(f)
            if need_raw:
                kept.append(f.numpy())
        fake_feats = np.concatenate(kept) if need_raw else None
        proto = base | fproto | {"samples": "model.sample: decoder mean of prior draws, quantised to 8 bits"}
        elapsed = time.perf_counter() - t0
        if "fid" in wanted:
            results["fid"] = {"metric": "fid", "value": fid_from_statistics(ref_stats, moments.result()),
                              "protocol": proto}
        if "pr" in wanted:
            pr = precision_recall(ref_feats, fake_feats, k=PR_K)
            results["pr"] = {"metric": "pr", "value": pr, **pr,
                             "protocol": proto | {"k": PR_K, "method": "Kynkaanniemi et al. 2019"}}
        if "kid" in wanted:
            kd = kid(ref_feats, fake_feats, seed=seed)
            results["kid"] = {"metric": "kid", "value": kd["value"], "std": kd["std"],
                              "protocol": proto | {"kernel": "(x.y/d + 1)^3", "estimator": "unbiased MMD^2",
                                                   "subsets": kd["subsets"],
                                                   "subset_size": kd["subset_size"]}}
        for m in wanted:
            results[m]["elapsed_s"] = round(elapsed, 3)

    if "nll" in metrics:
        t0 = time.perf_counter()
        g = torch.Generator().manual_seed(seed)
        parts = []
        for s in range(0, n_ref, batch_size):
            x = ds.batch(torch.arange(s, min(s + batch_size, n_ref))).to(dev)
            parts.append(iw_log_likelihood(model, x, nll_k, generator=g).cpu())
        nll = -torch.cat(parts)  # (n_ref,) nats
        results["nll"] = {
            "metric": "nll", "value": nll.mean().item(), "std_err": (nll.std() / nll.numel() ** 0.5).item(),
            "protocol": {k: base[k] for k in ("dataset", "split", "n_ref", "seed", "data_sha1", "reference")}
            | {"k": nll_k, "units": "nats per image",
               "estimator": "importance-weighted, z ~ q(z|x) (Burda 2016)",
               "density": "continuous Gaussian decoder N(G(z), gamma I) on x in [0,1]^(C*H*W)"},
            "elapsed_s": round(time.perf_counter() - t0, 3)}

    if "is" in metrics:
        score = inception_score(_model_images(model, n, seed, batch_size), logits_net)
        results["is"] = {"metric": "is", "value": score["value"], "std": score["std"],
                         "protocol": base | {"network": score["network"], "splits": score["splits"]}}

    for m, record in results.items():
        record["run_dir"] = str(run_dir)
        _write(run_dir, m, record)
    return {m: results[m] for m in metrics}
