"""Evaluation: FID, precision/recall, KID, IW-NLL, LPIPS — pure stages: features -> statistics -> metric.

>>> ext = InceptionFeatureExtractor()                   # TF-Inception 2015-12-05, sha1-checked
>>> stats = feature_statistics(ext(images))             # images (B, C, H, W) uint8 or float in [0, 1]
>>> fid = fid_from_statistics(stats, reference_stats)
>>> evaluate_run("runs/mnist", ["fid", "pr", "kid", "nll"])   # writes runs/mnist/eval/<metric>.json
"""

from .cache import CACHE_DIR_ENV, FeatureCache, cache_key_digest, default_cache_dir
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
from .runner import KNOWN_METRICS, UnknownMetricError, evaluate_run
from .statistics import FeatureStatistics, StreamingMoments, feature_statistics, iterate_features

__all__ = [
    "CACHE_DIR_ENV",
    "FEATURE_DIM",
    "INCEPTION_SHA1",
    "KNOWN_METRICS",
    "LPIPS",
    "WEIGHTS_DIR_ENV",
    "FeatureCache",
    "FeatureStatistics",
    "FoldedInceptionV3",
    "InceptionFeatureExtractor",
    "InceptionScoreUnavailable",
    "InceptionWeightsError",
    "NLLUnavailable",
    "StreamingMoments",
    "UnknownMetricError",
    "VGGFeatureDistance",
    "WeightsNotFound",
    "cache_key_digest",
    "default_cache_dir",
    "evaluate_run",
    "feature_statistics",
    "fid_from_statistics",
    "frechet_distance",
    "inception_score",
    "inception_score_from_logits",
    "inception_weights_path",
    "iterate_features",
    "iw_log_likelihood",
    "kid",
    "knn_radii",
    "load_inception_torchscript",
    "manifold_coverage",
    "mmd2_unbiased",
    "polynomial_kernel",
    "precision_recall",
    "preprocess",
    "resize_tf1_bilinear",
    "sqrtm_psd",
    "trunk_weights_path",
]
