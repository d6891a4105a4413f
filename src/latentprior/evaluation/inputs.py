"""What a metric may read: :class:`EvalInputs`, built once per evaluation by the runner and filled by the shared
feature pass (see :mod:`.runner`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from latentprior.config import EvalConfig

from .features import FeatureSet

__all__ = ["EvalInputs"]


@dataclass
class EvalInputs:
    """What a metric may read. ``real``/``fake`` are set when a requested metric reads features."""

    model: Any
    run_config: Any  # the run's Config (data, prior and model settings, for metrics that depend on them)
    test: Any  # the test split (ImageDataset); the reference set is its first n_ref images
    n_ref: int
    eval: EvalConfig  # its ``metrics`` are the registered names being computed, normalised
    protocol: dict  # dataset, split, n, n_ref, seed, reference, data_sha1
    device: torch.device
    weights_dir: str | None = None
    cache_dir: str | None = None  # the reference-feature cache (None: $LATENTPRIOR_CACHE_DIR)
    data_dir: str | None = None  # where the test split came from (None: the run's data.dir)
    progress: bool = True
    real: FeatureSet | None = None
    fake: FeatureSet | None = None
    feature_protocol: dict = field(default_factory=dict)  # network, weights hash, resize, how samples are made
    extractor: Any = None  # the feature network of the shared pass (for metrics that extract more images with it)
    prior_name: str | None = None  # a prior fitted into the run, evaluated in place of the run's own (None: its own)
    shared: dict = field(default_factory=dict)  # work that several metrics read, done by the first that needs it
