"""Linear separability of a latent space (Karras et al., 2019, "A Style-Based Generator Architecture for
Generative Adversarial Networks", §4.2), for generative autoencoders.

For each binary attribute i, generated images are labelled by an attribute classifier, and a linear SVM
predicts that label from the latent code X. With Y_i the classifier's label and X_i the SVM's prediction,

    separability = exp( Σ_i H(Y_i | X_i) ),      H in nats (StyleGAN's code: bits and 2^Σ, the same number)

1 when every attribute is a linear function of the code; it grows with the information the classifier sees that
no hyperplane of the latent space gives. As StyleGAN does: of N samples, only the most confident half per
attribute (the largest max(p, 1 − p)) is kept; the SVM is sklearn's ``LinearSVC()`` with default settings,
fitted and scored on those same samples; an attribute whose kept labels are all equal counts as perfectly
predicted (H = 0), as StyleGAN's fallback does. Because the SVM is scored on the samples it was fitted to, it
can fit noise when the kept count is not much larger than the latent dimension D (StyleGAN: 100,000 kept for
D = 512), which lowers H; keep N/2 ≫ D.

Latent spaces (``space``): ``"zT"`` is the code z the decoder reads, z ~ p(z); ``"z0"`` is the flow's base
space u ~ p_0, with z = f⁻¹(u) (only for a :class:`~latentprior.priors.FlowPrior`). For the N(0, I) VAE the
prior's space is its own base space, so its one row is ``zT``; for an adversarial prior z = G(ε) is read in
Z_T (its noise ε is not the base of an invertible map, so ``z0`` is refused there).

API (used by the metric registry and the disentanglement study)::

    sampled_codes(model, n, seed, batch_size)            # yields (u | None, z, images) per batch
    model_separability(model, classifier, n=..., seed=..., spaces=("zT", "z0"), names=...)
        -> {space: {"value": exp ΣH, "conditional_entropy": {name: H}, "label_entropy": {...}, ...}}
    linear_separability(latents (N, D), probabilities (N, A), names)   # the score on arrays
    conditional_entropy(x (N,), y (N,))                                # H(Y | X) in nats

``sampled_codes`` draws exactly the samples of :func:`~latentprior.evaluation.features.generated_images`
(same seed, same images), so separability and FID read the same generated set.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC
from torch import Tensor
from tqdm.auto import tqdm

from latentprior.errors import UserError
from latentprior.priors import FlowPrior

from .features import SAMPLE_CHUNK, chunk_generator

__all__ = ["SPACES", "LatentSpaceError", "check_space", "conditional_entropy", "linear_separability",
           "model_separability", "sampled_codes"]

SPACES = ("zT", "z0")
KEEP = 0.5  # StyleGAN keeps the most confident half of the samples per attribute


class LatentSpaceError(ValueError, UserError):
    """A latent space the run does not have (``z0`` without a flow prior) or an unknown space name."""


def check_space(prior, space: str) -> None:
    """Raise :class:`LatentSpaceError` unless ``space`` is one of :data:`SPACES` that ``prior`` has."""
    if space not in SPACES:
        raise LatentSpaceError(f"unknown latent space {space!r}; known: {', '.join(SPACES)}")
    if space == "z0" and not isinstance(prior, FlowPrior):
        raise LatentSpaceError(f"the base space z0 needs a flow prior; this run's prior is {type(prior).__name__}"
                               " (use zT)")


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum()) + 0.0  # + 0.0: a certain outcome is 0.0, not -0.0


def conditional_entropy(x: np.ndarray, y: np.ndarray) -> float:
    """H(Y | X) = H(X, Y) − H(X) in nats, from the empirical joint of two binary arrays (N,)."""
    x, y = np.asarray(x).astype(int), np.asarray(y).astype(int)
    joint = np.bincount(2 * x + y, minlength=4).astype(np.float64) / x.size  # p(x, y), x-major
    return max(0.0, _entropy(joint) - _entropy(joint.reshape(2, 2).sum(1)))


def _svm_predictions(latents: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, bool]:
    """LinearSVC predictions on its own training set, and whether it converged."""
    if labels.min() == labels.max():
        return labels, True  # one class only: no hyperplane to fit; StyleGAN counts it as perfectly predicted
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        pred = LinearSVC().fit(latents, labels).predict(latents)
    return pred, not any(issubclass(w.category, ConvergenceWarning) for w in caught)


def linear_separability(latents: np.ndarray, probabilities: np.ndarray,
                        names: Sequence[str] | None = None) -> dict:
    """StyleGAN's linear separability of codes (N, D) for classifier outputs P(attribute) (N, A).

    Returns ``value`` = exp(Σ_i H(Y_i | X_i)), and per attribute the conditional entropy, the entropy of the
    kept labels H(Y_i) (what H(Y_i | X_i) would be if the code told nothing) and whether the SVM converged.
    """
    latents = np.asarray(latents, dtype=np.float64)
    probs = np.asarray(probabilities, dtype=np.float64)
    n, a = probs.shape
    names = list(names) if names is not None else [f"attribute_{i}" for i in range(a)]
    keep = max(2, int(n * KEEP))
    cond, label_h, converged = {}, {}, {}
    for i, name in enumerate(names):
        confidence = np.maximum(probs[:, i], 1.0 - probs[:, i])
        kept = np.argsort(-confidence, kind="stable")[:keep]
        y = (probs[kept, i] >= 0.5).astype(int)
        pred, converged[name] = _svm_predictions(latents[kept], y)
        cond[name] = conditional_entropy(pred, y)
        label_h[name] = _entropy(np.bincount(y, minlength=2) / y.size)
    return {"value": math.exp(sum(cond.values())), "conditional_entropy": cond, "label_entropy": label_h,
            "svm_converged": converged, "n": n, "kept_per_attribute": keep}


@torch.no_grad()
def sampled_codes(model, n: int, seed: int, batch_size: int = SAMPLE_CHUNK
                  ) -> Iterator[tuple[Tensor | None, Tensor, Tensor]]:
    """(u, z, images) per chunk of at most ``SAMPLE_CHUNK``: base draws u (B, D) — None without a flow
    prior —, codes z = f⁻¹(u) (B, D) and images G(z) (B, C, H, W) in [0, 1], the samples of
    ``generated_images(model, n, seed)``; ``batch_size`` only splits the decoding."""
    was_training = model.training
    model.eval()
    prior = model.prior
    try:
        for start in range(0, n, SAMPLE_CHUNK):
            m, g = min(SAMPLE_CHUNK, n - start), chunk_generator(seed, start)
            if isinstance(prior, FlowPrior):
                u = prior.base.sample(m, None, g)
                z, _ = prior.from_base(u)
            else:
                u, z = None, prior.sample(m, generator=g)
            x = torch.cat([model.decode(z[s:s + batch_size]) for s in range(0, m, batch_size)])
            yield u, z, x.float().clamp_(0.0, 1.0)
    finally:
        model.train(was_training)


def model_separability(model, classifier, *, n: int, seed: int, spaces: Sequence[str] = ("zT",),
                       names: Sequence[str] | None = None, batch_size: int = 100, progress: bool = True) -> dict:
    """Linear separability of ``model``'s latent ``spaces`` over its n generated samples ``seed``.

    ``classifier.probabilities(images) -> (B, A)`` labels the images (see
    :mod:`~latentprior.evaluation.classifier`). Returns ``{space: linear_separability record}``; one pass of
    sampling and classification serves every space.
    """
    for s in spaces:
        check_space(model.prior, s)
    codes: dict[str, list[np.ndarray]] = {s: [] for s in spaces}
    probs = []
    for u, z, x in tqdm(sampled_codes(model, n, seed, batch_size), total=-(-n // SAMPLE_CHUNK),
                        desc="separability samples", disable=not progress):
        probs.append(classifier.probabilities(x).numpy())
        for s in spaces:
            codes[s].append((z if s == "zT" else u).cpu().double().numpy())
    p = np.concatenate(probs)
    return {s: linear_separability(np.concatenate(codes[s]), p, names) | {"space": s} for s in spaces}
