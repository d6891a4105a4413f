"""Sampling temperature τ: τ = 1 gives the draws of the untempered samplers bit for bit (written out below as
they were before temperatures existed), and τ scales each sampler's noise as its docstring says."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from latentprior.config import config_from_dict
from latentprior.models import build_model
from latentprior.priors import (
    AutoregressivePrior,
    GlowPrior,
    MixturePrior,
    MLPPrior,
    RealNVPPrior,
    StandardNormal,
    TwoStageVAE,
    VampPrior,
    conditional_flow,
)
from latentprior.priors.mixture import pick_components

DIM, N = 3, 500


def gen(seed: int = 5) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _perturb(module: nn.Module, seed: int = 0, scale: float = 0.3) -> nn.Module:
    g = gen(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g).to(p))
    return module


def _eps(n: int, dim: int, seed: int = 5, dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.randn(n, dim, generator=gen(seed), dtype=dtype)


# ---------------------------------------------------------------- τ = 1 is the untempered sampler, bit for bit


def test_standard_normal_at_temperature_one_is_the_untempered_draw() -> None:
    prior = StandardNormal(DIM)
    before = prior.loc + prior.scale * _eps(N, DIM)  # the sampler as it was: loc + scale ε
    assert torch.equal(prior.sample(N, generator=gen()), before)
    assert torch.equal(prior.sample(N, generator=gen(), temperature=1.0), before)


@pytest.mark.parametrize("cond", [False, True])
def test_flow_at_temperature_one_is_the_untempered_draw(cond: bool) -> None:
    torch.manual_seed(0)
    if cond:
        prior = _perturb(conditional_flow(DIM, 2, 16, cond_shape=(1, 8, 8), embed_dim=4))
        c = torch.rand(N, 64, generator=gen(1))
        h = prior.embedding(c)
        u = prior.base.mean(h) + prior.base.scale * _eps(N, DIM)  # N(μ(h), I) as it was drawn
    else:
        prior, c, h = _perturb(RealNVPPrior(DIM, 2, 16)), None, None
        u = prior.base.loc + prior.base.scale * _eps(N, DIM)
    with torch.no_grad():
        before = prior.transforms.inverse(u, h)[0]
        assert torch.equal(prior.sample(N, c, generator=gen()), before)
        assert torch.equal(prior.sample(N, c, generator=gen(), temperature=1.0), before)


def test_adversarial_prior_at_temperature_one_is_the_untempered_draw() -> None:
    torch.manual_seed(0)
    prior = MLPPrior(DIM, 16, 2, noise_dim=4).eval()
    with torch.no_grad():
        before = prior.net(_eps(N, 4))
        assert torch.equal(prior.sample(N, generator=gen(), temperature=1.0), before)


def _model_cfg(kind: str) -> dict:
    return {"data": {"name": "digits"}, "net": {"width": 0.0625}, "model": {"latent_dim": DIM},
            "prior": {"kind": kind, "layers": 2, "hidden": 16},
            "objective": {"kind": "aae" if kind == "adversarial" else "vae"}}


@pytest.mark.parametrize("kind", ["normal", "realnvp", "adversarial"])
def test_model_sample_at_temperature_one_is_the_untempered_images(kind: str) -> None:
    torch.manual_seed(0)
    model = build_model(config_from_dict(_model_cfg(kind)), (1, 28, 28))
    _perturb(model.prior)
    model.eval()
    with torch.no_grad():  # LatentAutoencoder.sample as it was: decoder mean of prior draws, clamped
        before = model.decode(model.prior.sample(8, generator=gen())).float().clamp_(0.0, 1.0)
    assert torch.equal(model.sample(8, generator=gen()), before)
    assert torch.equal(model.sample(8, generator=gen(), temperature=1.0), before)


def test_a_users_prior_without_the_keyword_still_samples_at_temperature_one() -> None:
    class OldPrior(StandardNormal):
        def sample(self, n, c=None, generator=None):  # the contract before temperatures
            return super().sample(n, c, generator)

    torch.manual_seed(0)
    model = build_model(config_from_dict(_model_cfg("normal")), (1, 28, 28))
    model.prior = OldPrior(DIM)
    assert model.sample(4, generator=gen()).shape == (4, 1, 28, 28)
    with pytest.raises(TypeError):
        model.sample(4, generator=gen(), temperature=0.5)


# ---------------------------------------------------------------- what τ does to each sampler


@pytest.mark.parametrize("tau", [0.5, 1.7])
def test_standard_normal_std_is_tau(tau: float) -> None:
    prior = StandardNormal(DIM)
    assert torch.equal(prior.sample(N, generator=gen(), temperature=tau), tau * _eps(N, DIM))
    z = prior.sample(20000, generator=gen(2), temperature=tau)
    torch.testing.assert_close(z.std(0), torch.full((DIM,), tau), atol=0.03 * tau, rtol=0)


@pytest.mark.parametrize("make", [lambda: RealNVPPrior(DIM, 2, 16), lambda: GlowPrior(DIM, 2, 16),
                                  lambda: AutoregressivePrior("maf", DIM, 2, 16),
                                  lambda: AutoregressivePrior("nsf", DIM, 2, 16, bins=4)],
                         ids=["realnvp", "glow", "maf", "nsf"])
def test_flow_temperature_scales_the_base_draw(make) -> None:
    """z = f⁻¹(τ ε): mapped back to the base space, a tempered draw is τ times the untempered base draw."""
    torch.manual_seed(0)
    prior = _perturb(make(), scale=0.1).double()
    eps = _eps(N, DIM, dtype=torch.float64)
    with torch.no_grad():
        z = prior.sample(N, generator=gen(), temperature=0.6)
        torch.testing.assert_close(prior.to_base(z)[0], 0.6 * eps, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("covariance", ["full", "diagonal"])
def test_mixture_temperature_scales_each_component_covariance(covariance: str) -> None:
    torch.manual_seed(0)
    prior = _perturb(MixturePrior(DIM, 4, covariance)).double()
    with torch.no_grad():
        z1 = prior.sample(N, generator=gen())
        zt = prior.sample(N, generator=gen(), temperature=0.4)
        # the same components and noise: each draw's offset from its component's mean shrinks by τ
        g = gen()
        torch.randn(N, DIM, generator=g, dtype=torch.float64)  # ε, then the uniforms that pick k
        k = pick_components(torch.rand(N, generator=g, dtype=torch.float64), prior.log_weights().exp())
        assert len(set(k.tolist())) == 4
        torch.testing.assert_close(zt - prior.means[k], 0.4 * (z1 - prior.means[k]), atol=1e-10, rtol=1e-10)
        # one component: the draws' covariance is τ² Σ
        single = _perturb(MixturePrior(DIM, 1, covariance)).double()
        z = single.sample(40000, generator=gen(3), temperature=1.5)
        torch.testing.assert_close(torch.cov(z.T), 2.25 * single.covariances()[0], atol=0.08, rtol=0.05)


def test_vamp_temperature_scales_each_component_std() -> None:
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(4, 2 * DIM)).double()
    prior = VampPrior(DIM, (1, 2, 2), 1).double().bind_encoder(lambda x: encoder(x).chunk(2, dim=-1))
    with torch.no_grad():
        mean, logvar = prior.components_params()
        z = prior.sample(40000, generator=gen(3), temperature=0.5)
        torch.testing.assert_close(z.std(0), 0.5 * torch.exp(0.5 * logvar[0]), atol=0.01, rtol=0.02)
        torch.testing.assert_close(z.mean(0), mean[0], atol=0.01, rtol=0)


def test_decoder_based_priors_temper_their_input_noise() -> None:
    """The adversarial prior and the two-stage VAE draw G(τ ε): a truncation of the generator's input."""
    torch.manual_seed(0)
    mlp = MLPPrior(DIM, 16, 2, noise_dim=4).eval()
    stage2 = TwoStageVAE(DIM, hidden=16, layers=1)
    with torch.no_grad():
        assert torch.equal(mlp.sample(N, generator=gen(), temperature=0.3), mlp.net(0.3 * _eps(N, 4)))
        assert torch.equal(stage2.sample(N, generator=gen(), temperature=0.3), stage2.decode(0.3 * _eps(N, DIM)))


def test_model_sample_passes_its_temperature_to_the_prior() -> None:
    torch.manual_seed(0)
    model = build_model(config_from_dict(_model_cfg("realnvp")), (1, 28, 28)).eval()
    with torch.no_grad():
        expected = model.decode(model.prior.sample(6, generator=gen(), temperature=0.7)).float().clamp_(0, 1)
    assert torch.equal(model.sample(6, generator=gen(), temperature=0.7), expected)
    assert not torch.equal(model.sample(6, generator=gen(), temperature=0.7), model.sample(6, generator=gen()))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan"), "1"])
def test_invalid_temperature_is_refused(bad) -> None:
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        StandardNormal(DIM).sample(3, temperature=bad)


def test_numpy_and_integer_temperatures_are_accepted() -> None:
    import numpy as np

    prior = StandardNormal(DIM)
    for tau in (np.float32(0.5), np.float64(0.5), 2):
        assert torch.equal(prior.sample(4, generator=gen(), temperature=tau), float(tau) * _eps(4, DIM))
    with pytest.raises(ValueError, match="temperature"):
        prior.sample(4, temperature=True)
