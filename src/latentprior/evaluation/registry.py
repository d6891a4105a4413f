"""The metric registry: ``METRICS[name]`` says what a metric reads and how it turns that into a record.

A metric reads :class:`EvalInputs` — the loaded model, the test split, the eval settings and, when it asks
for them, the shared feature pass of both sides — and returns a record: ``{"value": ..., "protocol": {...}}``
plus any extra result fields it lists in ``results``. The runner adds ``metric``, ``elapsed_s`` and
``run_dir`` and writes ``RUN_DIR/eval/<name>.json``. Adding a metric is one entry here::

    METRICS["ppl"] = Metric(compute=perceptual_path_length, summary="perceptual path length")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import torch

from latentprior.errors import UserError
from latentprior.models.autoencoder import ConditionRequired

from .conditional_samples import (
    TooFewConditions,
    conditional_diversity,
    conditional_fid_sets,
    conditional_z_share,
    reconstruction_mse,
)
from .diversity import lpips_diversity, lpips_trunk_path
from .features import make_feature_extractor, reference_features
from .frechet import fid_from_statistics
from .inputs import EvalInputs
from .kid import kid
from .latent_metrics import check_ppl, check_separability, ppl_record, separability_record, shared_lpips
from .nll import check_nll_supported, iw_log_likelihood
from .precision_recall import precision_recall
from .prior_hole import check_prior_density, check_reconstruction, prior_nll_record, recon_fid_record

__all__ = ["METRICS", "EvalInputs", "Metric", "UnknownMetricError", "NotConditional", "check_metrics",
           "check_condition", "uses_reference"]

PR_K = 3


@dataclass(frozen=True)
class Metric:
    """One registered metric.

    ``reads``: ``"statistics"`` (μ, Σ of both sides), ``"features"`` (the raw per-image features),
    ``"reference"`` (the reference side's statistics and the feature network, for a metric that extracts its own
    images, e.g. reconstructions) or ``"model"`` (only the model and data); the runner computes the feature pass
    once for all metrics that read it. ``tempered``: whether the metric reads prior samples drawn at
    ``eval.temperature`` (any other metric is refused at a temperature != 1). ``condition``: what the metric
    needs of the model's condition — ``"none"`` (it reads unconditional samples: refused for a conditional model),
    ``"required"`` (it samples given the test images' conditions: refused for an unconditional one) or ``"any"``.
    ``check(inputs)`` refuses anything else before any metric is computed (raises a ``UserError``). ``results``:
    the record's fields that are results (a report's columns); the others are protocol and bookkeeping.
    """

    compute: Callable[[EvalInputs], dict]
    summary: str
    reads: Literal["model", "statistics", "features", "reference"] = "model"
    check: Callable[[EvalInputs], None] | None = None
    results: tuple[str, ...] = ("value",)
    condition: Literal["none", "required", "any"] = "none"
    reference: bool = False  # reads the first n_ref (or n) test images: n and n_ref are bounded by the test set
    tempered: bool = False  # reads prior samples drawn at eval.temperature


class NotConditional(ValueError, UserError):
    """A conditional metric was asked of a model without a condition."""


def uses_reference(names: Iterable[str]) -> bool:
    """Whether any of the metrics ``names`` compares with the first n_ref (or n) test images."""
    return any(METRICS[m].reference for m in check_metrics(tuple(names)))


def check_condition(name: str, model) -> None:
    """Refuse, before any work, metric ``name`` for a model whose conditioning it cannot use."""
    need, conditional = METRICS[name].condition, bool(getattr(model, "conditional", False))
    if need == "required" and not conditional:
        raise NotConditional(f"metric {name} samples given conditions: it needs a conditional model (data.condition "
                             "set); this run has none")
    if need == "none" and conditional:
        raise ConditionRequired(f"metric {name} reads unconditional samples, but this run is conditional "
                                f"(data.condition '{model.condition_name}'); use the metrics "
                                f"{', '.join(m for m, e in METRICS.items() if e.condition == 'required')}")


def _fid(x: EvalInputs) -> dict:
    return {"value": fid_from_statistics(x.real.stats, x.fake.stats), "protocol": x.feature_protocol}


def _pr(x: EvalInputs) -> dict:
    pr = precision_recall(x.real.features, x.fake.features, k=PR_K)
    return {"value": pr, **pr, "protocol": x.feature_protocol | {"k": PR_K, "method": "Kynkaanniemi et al. 2019"}}


def _kid(x: EvalInputs) -> dict:
    kd = kid(x.real.features, x.fake.features, seed=x.eval.seed)
    return {"value": kd["value"], "std": kd["std"],
            "protocol": x.feature_protocol | {"kernel": "(x.y/d + 1)^3", "estimator": "unbiased MMD^2",
                                              "subsets": kd["subsets"], "subset_size": kd["subset_size"]}}


def _nll(x: EvalInputs) -> dict:
    g = torch.Generator().manual_seed(x.eval.seed)
    bs = x.eval.batch_size
    parts = [iw_log_likelihood(x.model, x.test.batch(torch.arange(s, min(s + bs, x.n_ref))).to(x.device),
                               x.eval.nll_k, generator=g).cpu() for s in range(0, x.n_ref, bs)]
    nll = -torch.cat(parts)  # (n_ref,) nats
    return {"value": nll.mean().item(), "std_err": (nll.std() / nll.numel() ** 0.5).item(),
            "protocol": {k: v for k, v in x.protocol.items() if k != "n"}
            | {"k": x.eval.nll_k, "units": "nats per image",
               "estimator": "importance-weighted, z ~ q(z|x) (Burda 2016)",
               "density": "continuous Gaussian decoder N(G(z), gamma I) on x in [0,1]^(C*H*W)"}}


def _lpips_record(x: EvalInputs, d, proto: dict, pairing: dict) -> dict:
    std_err = (d.std() / d.numel() ** 0.5).item() if d.numel() > 1 else None
    return {"value": d.mean().item(), "std_err": std_err,
            "protocol": {"dataset": x.protocol["dataset"], "seed": x.eval.seed} | proto | pairing}


def _lpips(x: EvalInputs) -> dict:
    lp, proto = shared_lpips(x, x.eval.lpips_net)
    d = lpips_diversity(x.model, lp, pairs=x.eval.lpips_pairs, seed=x.eval.seed, batch_size=x.eval.batch_size)
    return _lpips_record(x, d, proto, {"pairs": x.eval.lpips_pairs,
                                       "pairing": "generated samples 2i and 2i+1 of the seed's set"})


def _cond_lpips(x: EvalInputs) -> dict:
    lp, proto = shared_lpips(x, x.eval.lpips_net)
    n = min(x.eval.lpips_pairs, len(x.test))
    d = conditional_diversity(x.model, lp, x.test.images[:n], seed=x.eval.seed)
    return _lpips_record(x, d, proto, {"pairs": n, "condition": x.run_config.data.condition,
                                       "pairing": f"two samples for the condition of each of the first {n} "
                                                  "test images"})


def _cond_z_share(x: EvalInputs) -> dict:
    lp, proto = shared_lpips(x, x.eval.lpips_net)
    n = min(x.eval.lpips_pairs, len(x.test))
    rec = conditional_z_share(x.model, lp, x.test.images[:n], seed=x.eval.seed, batch_size=x.eval.batch_size)
    pairing = {"pairs": n, "condition": x.run_config.data.condition,
               "definition": "sum_i LPIPS(s_i, s'_i) / sum_i LPIPS(s_i, s'_(i+1 mod n)): s_i, s'_i two samples for "
                             f"the condition of test image i (cond_lpips's), i < {n}",
               "std_err": "ratio estimator, std(w_i - value b_i) / (sqrt(n) mean(b_i))"}
    return {"value": rec["value"], "std_err": rec["std_err"], "within": rec["within"], "between": rec["between"],
            "protocol": {"dataset": x.protocol["dataset"], "seed": x.eval.seed} | proto | pairing}


def _check_cond_z_share(x: EvalInputs) -> None:
    if min(x.eval.lpips_pairs, len(x.test)) < 2:
        raise TooFewConditions(f"cond_z_share compares samples of different test conditions: it needs "
                               f"eval.lpips_pairs >= 2, got {x.eval.lpips_pairs}")
    lpips_trunk_path(x.eval.lpips_net, x.weights_dir)


def _lpips_trunk(x: EvalInputs) -> None:
    lpips_trunk_path(x.eval.lpips_net, x.weights_dir)


def _cond_fid(x: EvalInputs) -> dict:
    extractor = make_feature_extractor(x.device)
    images = x.test.images[:x.n_ref]

    def reference(imgs):
        return reference_features(imgs, extractor, dataset=x.protocol["dataset"], split="test",
                                  cache_dir=x.cache_dir, batch_size=x.eval.batch_size, progress=x.progress,
                                  data_sha1=x.protocol["data_sha1"])

    real, fake = conditional_fid_sets(x.model, images, x.eval.seed, extractor, reference=reference,
                                      progress=x.progress)
    return {"value": fid_from_statistics(real.stats, fake.stats),
            "protocol": x.protocol | extractor.protocol() | {"n": x.n_ref, "condition": x.run_config.data.condition,
                                                              "samples": "one per condition of each reference image"}}


def _cond_mse(x: EvalInputs) -> dict:
    mse = reconstruction_mse(x.model, x.test.images[:x.n_ref])
    return {"value": mse.mean().item(), "std_err": (mse.std() / mse.numel() ** 0.5).item(),
            "protocol": {k: v for k, v in x.protocol.items() if k != "n"}
            | {"reconstruction": "G(mean of q(z|x,y), y), per-pixel squared error on [0, 1]"}}


METRICS: dict[str, Metric] = {
    "fid": Metric(_fid, "Frechet Inception distance", reads="statistics", reference=True, tempered=True),
    "pr": Metric(_pr, "improved precision and recall (k=3)", reads="features",
                 results=("value", "precision", "recall"), reference=True, tempered=True),
    "kid": Metric(_kid, "kernel Inception distance", reads="features", results=("value", "std"), reference=True,
                  tempered=True),
    "recon_fid": Metric(recon_fid_record, "FID of the test images' reconstructions G(mean of q(z|x)) against the "
                        "sample FID's reference", reads="reference", check=check_reconstruction, reference=True),
    "prior_nll": Metric(prior_nll_record, "the prior's -log p(z) of encoded test images (nats per latent vector)",
                        check=check_prior_density, results=("value", "std_err", "per_dim")),
    "nll": Metric(_nll, "importance-weighted NLL of the test images (nats)",
                  check=lambda x: check_nll_supported(x.model), results=("value", "std_err"), reference=True),
    "lpips": Metric(_lpips, "sample diversity: mean LPIPS between generated pairs", check=_lpips_trunk,
                    results=("value", "std_err")),
    "cond_lpips": Metric(_cond_lpips, "conditional diversity: mean LPIPS between two samples per test condition",
                         check=_lpips_trunk, results=("value", "std_err"), condition="required"),
    "cond_z_share": Metric(_cond_z_share, "how much a conditional sample depends on z: LPIPS between two samples "
                           "of one condition over LPIPS between samples of two", check=_check_cond_z_share,
                           results=("value", "std_err", "within", "between"), condition="required"),
    "cond_fid": Metric(_cond_fid, "FID of one sample per test condition against the test images",
                       condition="required", reference=True),
    "cond_mse": Metric(_cond_mse, "reconstruction error of the test images given their condition",
                       results=("value", "std_err"), condition="required", reference=True),
    **{f"separability_{s.lower()}": Metric(lambda x, s=s: separability_record(x, s),
                                           f"linear separability of {s} (StyleGAN): exp(sum_i H(Y_i | SVM_i))",
                                           check=lambda x, s=s: check_separability(x, s))
       for s in ("zT", "z0")},
    **{f"ppl_{s.lower()}": Metric(lambda x, s=s: ppl_record(x, s),
                                  f"perceptual path length in {s} (StyleGAN, LPIPS-VGG16)",
                                  check=lambda x, s=s: check_ppl(x, s), results=("value", "median", "std_err"))
       for s in ("zT", "z0")},
}


class UnknownMetricError(ValueError, UserError):
    """A metric name that is not in :data:`METRICS`."""


def check_metrics(names: str | Iterable[str]) -> tuple[str, ...]:
    """Registered metric names, normalised (stripped, lower case, duplicates dropped, order kept).

    A string is read as a comma-separated list. Raises :class:`UnknownMetricError` listing the known names.
    """
    if isinstance(names, str):
        names = names.split(",")
    out = tuple(dict.fromkeys(str(m).strip().lower() for m in names if str(m).strip()))
    unknown = [m for m in out if m not in METRICS]
    if unknown or not out:
        what = f"unknown metric(s) {unknown}" if unknown else "no metric given"
        raise UnknownMetricError(f"{what}; known: {', '.join(METRICS)}")
    return out
