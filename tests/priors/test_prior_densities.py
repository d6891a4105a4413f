"""Every new prior as a density and a sampler: in 2-D its density integrates to 1 (grid quadrature) and its
samples follow it (Kolmogorov-Smirnov on both marginals, mean and covariance against the quadrature's); every
parameter learns from log p(z); save/load keeps log p(z); a generator fixes the draws; dtypes and devices."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from latentprior.priors import AutoregressivePrior, GlowPrior, MixturePrior, Prior, TwoStageVAE, VampPrior

PSEUDO_SHAPE = (1, 4, 4)


def _perturb(module: nn.Module, seed: int, scale: float = 0.3) -> None:
    """Generic values for every parameter (zero-initialised coupling layers, identity ActNorms, ...)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g).to(p))


def _vamp(dim: int, seed: int) -> VampPrior:
    """A VampPrior over a small fixed linear Gaussian encoder of 4x4 pseudo-inputs (its own, in the closure)."""
    torch.manual_seed(100)  # the same encoder for every seed: only the pseudo-inputs differ
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(16, 2 * dim))
    with torch.no_grad():
        encoder[1].weight[:dim].mul_(8.0)  # spread the components' means apart

    def encode(x: Tensor) -> tuple[Tensor, Tensor]:
        mean, logvar = encoder(x).chunk(2, dim=-1)
        return mean, logvar - 1.0

    torch.manual_seed(seed)
    prior = VampPrior(dim, PSEUDO_SHAPE, 3, init_scale=2.0).bind_encoder(encode)
    # kept beside the prior for .to() in the tests, as a plain attribute: a submodule would join its parameters
    object.__setattr__(prior, "encoder_for_tests", encoder)
    assert [n for n, _ in prior.named_parameters()] == ["pseudo_logits"]
    return prior


def _flow(make: Callable[[int], Prior], scale: float = 0.3) -> Callable[[int, int], Prior]:
    def build(dim: int, seed: int) -> Prior:
        torch.manual_seed(seed)
        prior = make(dim)
        _perturb(prior, seed, scale)
        return prior
    return build


def _two_stage(dim: int, seed: int) -> TwoStageVAE:
    torch.manual_seed(seed)
    prior = TwoStageVAE(dim, hidden=16, layers=1, n_importance=64, gamma=0.3, decoder_noise=True)
    _perturb(prior, seed)
    return prior


# name -> builder(dim, seed)
PRIORS: dict[str, Callable[[int, int], Prior]] = {
    "glow": _flow(lambda d: GlowPrior(d, 2, 16)),
    # MADE conditioners start random: a little noise (for the ActNorms) keeps the density inside the grid
    "maf": _flow(lambda d: AutoregressivePrior("maf", d, 2, 16), scale=0.1),
    "nsf": _flow(lambda d: AutoregressivePrior("nsf", d, 2, 16, bins=5)),
    "gmm-full": _flow(lambda d: MixturePrior(d, 3, "full")),
    "gmm-diagonal": _flow(lambda d: MixturePrior(d, 3, "diagonal")),
    "vamp": _vamp,
    "two-stage": _two_stage,
}


def _to(prior: Prior, **kw) -> Prior:
    prior.to(**kw)
    if isinstance(prior, VampPrior):
        prior.encoder_for_tests.to(**kw)
    return prior


def _log_prob(prior: Prior, z: Tensor) -> Tensor:
    torch.manual_seed(0)  # the two-stage VAE's importance draws
    with torch.no_grad():
        return torch.cat([prior.log_prob(chunk) for chunk in z.split(4096)])


def _grid(prior: Prior, n: int = 240, lim: float = 8.0) -> tuple[Tensor, Tensor, float]:
    """axis (n,), density (n, n) with [i, j] = p(axis[i], axis[j]), cell width."""
    axis = torch.linspace(-lim, lim, n, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis)  # (n², 2), the first coordinate varies slowest
    return axis, _log_prob(prior, grid).exp().reshape(n, n), float(axis[1] - axis[0])


@pytest.mark.parametrize("name", list(PRIORS))
def test_2d_density_integrates_to_one(name: str) -> None:
    prior = _to(PRIORS[name](2, 0), dtype=torch.float64)
    _, density, dx = _grid(prior)
    assert abs(float(density.sum()) * dx * dx - 1.0) < 1e-2


@pytest.mark.parametrize("name", list(PRIORS))
def test_samples_follow_the_density(name: str) -> None:
    prior = _to(PRIORS[name](2, 0), dtype=torch.float64).eval()
    axis, density, dx = _grid(prior)
    n = 20000
    with torch.no_grad():
        z = prior.sample(n, generator=torch.Generator().manual_seed(1))
    # Kolmogorov-Smirnov on each marginal: the quadrature's CDF at the cells' right edges
    edges = axis + dx / 2
    for dim, marginal in ((0, density.sum(1) * dx), (1, density.sum(0) * dx)):
        cdf = torch.cumsum(marginal, 0) * dx
        empirical = (z[:, dim, None] <= edges).double().mean(0)
        ks = float((cdf - empirical).abs().max())
        assert ks < 0.015, (dim, ks)  # the 1% critical value at n = 20000 is 0.0115, plus quadrature error
    # first and second moments, within 5 standard errors of the sample estimates
    w = density.flatten() * dx * dx
    pts = torch.cartesian_prod(axis, axis)
    mean_q = (w[:, None] * pts).sum(0)
    cov_q = (w[:, None, None] * (pts - mean_q)[:, :, None] * (pts - mean_q)[:, None, :]).sum(0)
    mean_s, centred = z.mean(0), z - z.mean(0)
    cov_s = centred.T @ centred / (n - 1)
    se_mean = (centred.var(0) / n).sqrt()
    se_cov = ((centred[:, :, None] * centred[:, None, :]).var(0) / n).sqrt()
    assert torch.all((mean_s - mean_q).abs() < 5 * se_mean + 1e-3), (mean_s, mean_q)
    assert torch.all((cov_s - cov_q).abs() < 5 * se_cov + 1e-3), (cov_s, cov_q)


@pytest.mark.parametrize("name", list(PRIORS))
def test_every_parameter_learns_from_log_prob(name: str) -> None:
    prior = PRIORS[name](3, 0)
    z = 2 * torch.randn(64, 3, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    (-prior.log_prob(z).mean()).backward()
    params = dict(prior.named_parameters())
    assert params, "a learnable prior needs parameters"
    for pname, p in params.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", list(PRIORS))
def test_state_dict_round_trip_keeps_log_prob(name: str) -> None:
    prior, fresh = PRIORS[name](3, 0), PRIORS[name](3, 1)
    z = 2 * torch.randn(10, 3, generator=torch.Generator().manual_seed(3))
    before = _log_prob(prior, z)
    assert not torch.allclose(_log_prob(fresh, z), before)
    buffer = io.BytesIO()
    torch.save(prior.state_dict(), buffer)
    buffer.seek(0)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(_log_prob(fresh, z), before)


@pytest.mark.parametrize("name", list(PRIORS))
def test_generator_makes_sampling_reproducible(name: str) -> None:
    prior = PRIORS[name](3, 0).eval()

    def draw(seed: int) -> Tensor:
        with torch.no_grad():
            return prior.sample(6, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(draw(0), draw(0))
    assert not torch.allclose(draw(0), draw(1))


@pytest.mark.parametrize("device", ["cpu", "meta"])  # meta: a second device, catching anything tied to the CPU
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", list(PRIORS))
def test_sample_and_log_prob_shape_device_dtype(name: str, dtype: torch.dtype, device: str) -> None:
    prior = _to(PRIORS[name](3, 0), device=device, dtype=dtype)
    with torch.no_grad():
        z = prior.sample(7)
        lp = prior.log_prob(z)
    assert z.shape == (7, 3) and z.dtype == dtype and z.device.type == device
    assert lp.shape == (7,) and lp.dtype == dtype and lp.device.type == device
