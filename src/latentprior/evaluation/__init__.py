"""Evaluation: FID, precision/recall, KID, IW-NLL, LPIPS diversity — pure stages: features -> statistics ->
metric, and a registry of metrics that ``evaluate_run`` loops over.

>>> ext = InceptionFeatureExtractor()                   # TF-Inception 2015-12-05, sha1-checked
>>> fake = extract(generated_images(model, n=10000, seed=0, batch_size=100), ext)
>>> fid = fid_from_statistics(reference_stats, fake.stats)
>>> evaluate_run("runs/mnist", EvalConfig(metrics=("fid", "pr", "kid", "nll")))  # writes runs/mnist/eval/*.json
"""

from .cache import CACHE_DIR_ENV, FeatureCache, cache_key_digest, default_cache_dir
from .diversity import lpips_diversity, lpips_network
from .features import FeatureSet, extract, generated_images, reference_features
from .frechet import fid_from_statistics, frechet_distance, sqrtm_psd
from .inception import (
    FEATURE_DIM,
    INCEPTION_SHA1,
    InceptionFeatureExtractor,
    InceptionWeightsError,
    inception_weights_path,
    load_inception_torchscript,
    preprocess,
    resize_tf1_bilinear,
)
from .inception_net import FoldedInceptionV3
from .inception_score import InceptionScoreUnavailable, inception_score, inception_score_from_logits
from .kid import kid, mmd2_unbiased, polynomial_kernel
from .lpips import LPIPS, WEIGHTS_DIR_ENV, VGGFeatureDistance, WeightsNotFound, trunk_weights_path
from .nll import NLLUnavailable, iw_log_likelihood
from .precision_recall import knn_radii, manifold_coverage, precision_recall
from .registry import METRICS, EvalInputs, Metric, UnknownMetricError, check_metrics
from .runner import evaluate_run
from .statistics import FeatureStatistics, StreamingMoments, feature_statistics, iterate_features

__all__ = [
    "CACHE_DIR_ENV",
    "FEATURE_DIM",
    "INCEPTION_SHA1",
    "LPIPS",
    "METRICS",
    "WEIGHTS_DIR_ENV",
    "EvalInputs",
    "FeatureCache",
    "FeatureSet",
    "FeatureStatistics",
    "FoldedInceptionV3",
    "InceptionFeatureExtractor",
    "InceptionScoreUnavailable",
    "InceptionWeightsError",
    "Metric",
    "NLLUnavailable",
    "StreamingMoments",
    "UnknownMetricError",
    "VGGFeatureDistance",
    "WeightsNotFound",
    "cache_key_digest",
    "check_metrics",
    "default_cache_dir",
    "evaluate_run",
    "extract",
    "feature_statistics",
    "fid_from_statistics",
    "frechet_distance",
    "generated_images",
    "inception_score",
    "inception_score_from_logits",
    "inception_weights_path",
    "iterate_features",
    "iw_log_likelihood",
    "kid",
    "knn_radii",
    "load_inception_torchscript",
    "lpips_diversity",
    "lpips_network",
    "manifold_coverage",
    "mmd2_unbiased",
    "polynomial_kernel",
    "precision_recall",
    "preprocess",
    "reference_features",
    "resize_tf1_bilinear",
    "sqrtm_psd",
    "trunk_weights_path",
]
