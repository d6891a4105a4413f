"""Perceptual path length on StyleGAN's protocol: the interpolation of each latent space, closed forms of a linear
generator, the face crop, the adaptive sample size and what a record states."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from latentprior.config import EvalConfig
from latentprior.evaluation.features import chunk_generator
from latentprior.evaluation.ppl import (
    default_method,
    face_crop,
    perceptual_path_length,
    trimmed_mean,
    trimmed_mean_se,
)
from latentprior.evaluation.registry import METRICS, EvalInputs
from latentprior.priors import MLPPrior, Prior, RealNVPPrior, StandardNormal
from latentprior.priors.conditional_flow import ConditionalNormal


def _isometry(d: int, p: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(p, d, generator=torch.Generator().manual_seed(3), dtype=torch.float64))
    return q  # (p, d), orthonormal columns: |Q z| = |z|


def _sq_l2(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x - y).double().pow(2).flatten(1).sum(1)


class _Linear(nn.Module):
    """G(z) = 0.5 + c Q z, an 8 x 8 image: a scaled isometry, inside [0, 1] for |z| <= 0.5 / c (no clamping)."""

    def __init__(self, prior: nn.Module, d: int, c: float = 0.05) -> None:
        super().__init__()
        self.prior, self.c = prior, c
        self.register_buffer("q", _isometry(d, 64))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (0.5 + self.c * z.double() @ self.q.T).view(-1, 1, 8, 8)


class _FixedPair(Prior):
    """Every path runs from a = r e_1 to b = r (cos ω e_1 + sin ω e_2): the first draw of a chunk is a, the second b."""

    def __init__(self, r: float, omega: float) -> None:
        super().__init__(2)
        self.a = torch.tensor([r, 0.0], dtype=torch.float64)
        self.b = r * torch.tensor([math.cos(omega), math.sin(omega)], dtype=torch.float64)
        self.calls = 0

    def sample(self, n, c=None, generator=None):
        self.calls += 1
        return (self.a if self.calls % 2 else self.b).expand(n, 2).clone()


def test_slerp_in_gaussian_input_spaces_and_lerp_in_a_learned_prior():
    flow = RealNVPPrior(4, 2, 8)
    assert default_method(StandardNormal(4), "zT") == "slerp"  # the VAE's, beta-VAE's and FactorVAE's N(0, I)
    assert default_method(flow, "z0") == "slerp"  # the flow's base N(0, I)
    assert default_method(flow, "zT") == "lerp"  # the learned prior's own space (the paper's 6.2)
    assert default_method(MLPPrior(4, 8, 1), "zT") == "lerp"
    assert default_method(ConditionalNormal(4, 3), "zT") == "lerp"  # a learned mean is not N(0, I)


@pytest.mark.parametrize("method", ["slerp", "lerp"])
def test_ppl_of_a_linear_generator_with_known_geometry_is_the_closed_form(method):
    r, omega, c, eps = 2.0, 1.1, 0.05, 0.2
    model = _Linear(_FixedPair(r, omega), 2, c)
    rec = perceptual_path_length(model, _sq_l2, n=250, seed=0, epsilon=eps, method=method, max_n=0,
                                 progress=False)
    if method == "slerp":  # an arc of radius r at angular speed omega: chord 2 r sin(omega eps / 2) for every t
        want = (2 * c * r * math.sin(omega * eps / 2)) ** 2 / eps**2
    else:  # a straight line at speed |b - a| = r sqrt(2 (1 - cos omega)), whatever t
        want = c**2 * 2 * r**2 * (1 - math.cos(omega))
    assert rec["method"] == method and rec["n"] == 250
    assert rec["value"] == pytest.approx(want, rel=1e-5)
    assert rec["median"] == pytest.approx(want, rel=1e-5)
    # the two interpolations differ by (arc / chord)^2 here: a lerp reading would be 10 % off
    assert (omega / (2 * math.sin(omega / 2))) ** 2 > 1.05


def test_a_standard_normal_vae_is_measured_with_slerp_on_the_protocols_endpoints():
    model = _Linear(StandardNormal(3), 3, c=0.02)
    n, seed, eps = 250, 4, 0.1
    rec = perceptual_path_length(model, _sq_l2, n=n, seed=seed, epsilon=eps, max_n=0, progress=False)
    want = []
    for start in range(0, n, 100):  # the protocol's endpoints: chunk (seed, start) draws a, b, then t
        g, m = chunk_generator(seed, start), min(100, n - start)
        a, b = model.prior.sample(m, generator=g).double(), model.prior.sample(m, generator=g).double()
        t = torch.rand(m, generator=g).double()[:, None]
        w = torch.acos((a * b).sum(1, keepdim=True) / (a.norm(dim=1, keepdim=True) * b.norm(dim=1, keepdim=True)))

        def arc(s, a=a, b=b, w=w):  # the norm-keeping slerp, written out
            return (torch.sin((1 - s) * w) * a + torch.sin(s * w) * b) / torch.sin(w)

        want.append(model.c**2 * (arc(t + eps) - arc(t)).pow(2).sum(1) / eps**2)
    value, kept = trimmed_mean(torch.cat(want).numpy())
    assert rec["method"] == "slerp" and rec["kept"] == kept
    assert rec["value"] == pytest.approx(value, rel=1e-4)


def test_the_face_crop_is_stylegans_window_of_a_64x64_image():
    x = torch.arange(2 * 3 * 64 * 64, dtype=torch.float32).view(2, 3, 64, 64)
    got = face_crop(x)
    assert got.shape == (2, 3, 32, 32)
    # StyleGAN: c = 64 // 8 = 8, images[:, :, 3c:7c, 2c:6c]: rows 24..55, columns 16..47
    rows, cols = torch.arange(24, 56), torch.arange(16, 48)
    assert torch.equal(got, x[:, :, rows][:, :, :, cols])
    assert got[0, 0, 0, 0] == 24 * 64 + 16 and got[0, 0, -1, -1] == 55 * 64 + 47


class _Frame(nn.Module):
    """An N(0, I) model whose 64 x 64 images change with z only outside StyleGAN's face window."""

    def __init__(self) -> None:
        super().__init__()
        self.prior = StandardNormal(2)
        mask = torch.ones(64, 64, dtype=torch.float64)
        mask[24:56, 16:48] = 0.0
        self.register_buffer("mask", mask)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (0.5 + 0.01 * z.double().sum(1)[:, None, None, None] * self.mask).expand(-1, 1, 64, 64)


def test_the_crop_is_applied_before_the_distance():
    kw = {"n": 100, "seed": 0, "epsilon": 1e-2, "max_n": 0, "progress": False}
    whole = perceptual_path_length(_Frame(), _sq_l2, **kw)
    face = perceptual_path_length(_Frame(), _sq_l2, crop="face", **kw)
    assert whole["value"] > 0 and face["value"] == 0.0 and face["crop"] == "face"
    with pytest.raises(ValueError, match="unknown crop"):
        perceptual_path_length(_Frame(), _sq_l2, crop="centre", **kw)


def test_the_standard_error_of_the_trimmed_mean_is_calibrated():
    rng = np.random.default_rng(0)
    draws = rng.exponential(size=(400, 1000))  # skewed, as path lengths are
    means = np.array([trimmed_mean(d)[0] for d in draws])
    ses = np.array([trimmed_mean_se(d) for d in draws])
    assert ses.mean() == pytest.approx(means.std(ddof=1), rel=0.1)
    assert math.isnan(trimmed_mean_se(np.ones(1)))


def test_the_adaptive_sample_size_stops_at_the_first_block_below_the_target():
    model = _Linear(StandardNormal(2), 2)
    kw = {"seed": 1, "epsilon": 1e-2, "method": "lerp", "progress": False}
    fixed = {n: perceptual_path_length(model, _sq_l2, n=n, max_n=0, **kw) for n in range(100, 1100, 100)}
    first = next(n for n, r in fixed.items() if r["std_err"] < 0.05 * r["value"])
    assert first > 100  # the target is not met by the first block: the test exercises the loop
    rec = perceptual_path_length(model, _sq_l2, n=100, max_n=1000, rel_se=0.05, **kw)
    assert rec["n"] == first and rec["converged"]
    assert rec["value"] == fixed[first]["value"] and rec["std_err"] == fixed[first]["std_err"]
    capped = perceptual_path_length(model, _sq_l2, n=100, max_n=300, rel_se=1e-4, **kw)
    assert capped["n"] == 300 and not capped["converged"] and capped["value"] == fixed[300]["value"]


def test_a_ppl_record_states_interpolation_crop_clamp_and_paths():
    model = _Linear(StandardNormal(2), 2, c=0.02)
    ev = EvalConfig(metrics=("ppl_zt",), ppl_n=100, ppl_max_n=400, ppl_crop="face", ppl_epsilon=1e-2)
    x = EvalInputs(model, None, SimpleNamespace(images=torch.zeros(1, 1, 64, 64)), 0, ev, {"dataset": "celeba"},
                   torch.device("cpu"), progress=False)
    x.shared["lpips_vgg_32"] = (lambda a, b: _sq_l2(a, b), {"network": "squared L2"})  # the crop's side: 32
    rec = METRICS["ppl_zt"].compute(x)
    p = rec["protocol"]
    assert p["interpolation"] == "slerp" and p["crop"].startswith("StyleGAN face crop")
    assert p["images"] == "decoder mean clamped to [0, 1]" and p["network"] == "squared L2"
    assert p["n"] == 100 and p["paths"] == rec["paths"] and 100 <= rec["paths"] <= 400
    assert "until std_err < 0.05" in p["sample_size"] and rec["std_err"] > 0
