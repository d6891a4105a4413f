"""Ex-post priors on a tensor of latents: the EM mixture equals scikit-learn's fit, a flow fitted by maximum
likelihood, Dai & Wipf's second-stage VAE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.mixture import GaussianMixture
from torch import Tensor, nn

from latentprior.priors import (
    AutoregressivePrior,
    MixturePrior,
    StandardNormal,
    TwoStageVAE,
    VampPrior,
    fit_gmm,
    fit_prior,
    fit_two_stage_vae,
    mixture_from_sklearn,
)


def _latents(n: int, seed: int, dim: int = 3) -> Tensor:
    """Three anisotropic clusters in `dim` dimensions (float64): latents with structure a single Gaussian misses."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[-3.0, 0.0, 1.0], [2.0, 2.5, -1.0], [2.5, -2.0, 0.5]], dtype=torch.float64)[:, :dim]
    k = torch.randint(0, 3, (n,), generator=g)
    mix = torch.tensor([[0.8, 0.3, 0.0], [0.0, 0.4, 0.2], [0.0, 0.0, 0.5]], dtype=torch.float64)[:dim, :dim]
    return centres[k] + torch.randn(n, dim, generator=g, dtype=torch.float64) @ mix


def _gaussian_ll(train: Tensor, test: Tensor) -> float:
    """Held-out log-likelihood of the moment-matched single Gaussian: what a mixture or a flow must beat."""
    mvn = torch.distributions.MultivariateNormal(train.mean(0), torch.cov(train.T))
    return float(mvn.log_prob(test).mean())


@pytest.mark.parametrize(("covariance", "sk_type"), [("full", "full"), ("diagonal", "diag")])
def test_ex_post_gmm_equals_sklearn_fit(covariance: str, sk_type: str) -> None:
    z, test = _latents(2000, 0), _latents(500, 1)
    prior = fit_gmm(z, 4, covariance, seed=3)
    reference = GaussianMixture(4, covariance_type=sk_type, random_state=3).fit(z.numpy())
    assert isinstance(prior, MixturePrior) and prior.covariance == covariance and prior.components == 4
    assert prior.means.dtype == torch.float64
    with torch.no_grad():
        ours = prior.log_prob(test).numpy()
    np.testing.assert_allclose(ours, reference.score_samples(test.numpy()), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(prior.log_weights().exp(), torch.as_tensor(reference.weights_), rtol=1e-12, atol=0)
    assert float(ours.mean()) > _gaussian_ll(z, test) + 0.3


def test_ex_post_gmm_keeps_the_latents_dtype_and_samples_its_fit() -> None:
    z = _latents(3000, 0).float()
    prior = fit_gmm(z, 3, seed=0)
    assert prior.means.dtype == torch.float32
    with torch.no_grad():
        draws = prior.sample(20000, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(draws.mean(0), z.mean(0), atol=0.06, rtol=0)
    torch.testing.assert_close(torch.cov(draws.T), torch.cov(z.T), atol=0.12, rtol=0.05)


def test_mixture_from_sklearn_refuses_other_covariance_types() -> None:
    gm = GaussianMixture(2, covariance_type="tied", random_state=0).fit(_latents(200, 0).numpy())
    with pytest.raises(ValueError, match="only 'full' and 'diag'"):
        mixture_from_sklearn(gm)
    with pytest.raises(ValueError, match="NaN or infinite"):
        fit_gmm(torch.tensor([[0.0, 1.0], [float("nan"), 0.0]]), 1)


def test_fit_prior_trains_a_flow_by_maximum_likelihood() -> None:
    z, test = _latents(2000, 0, dim=2), _latents(1000, 1, dim=2)
    torch.manual_seed(0)
    prior = AutoregressivePrior("nsf", 2, 2, 32, bins=8).double()
    rng_before = torch.random.get_rng_state()
    history = fit_prior(prior, z, epochs=25, batch_size=200, lr=3e-3, seed=0)
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # the caller's stream is left as it was
    assert len(history) == 25 and history[-1] < history[0]
    with torch.no_grad():
        ll = float(prior.log_prob(test).mean())
    assert ll > _gaussian_ll(z, test) + 0.2, (ll, _gaussian_ll(z, test))
    assert ll > float(StandardNormal(2).double().log_prob(test).mean()) + 1.0


def test_fit_prior_is_reproducible_and_refuses_what_it_cannot_fit() -> None:
    z = _latents(300, 0, dim=2)

    def fitted() -> Tensor:
        torch.manual_seed(4)
        prior = MixturePrior(2, 3).double()
        fit_prior(prior, z, epochs=3, batch_size=64, seed=1)
        return prior.means.detach()

    assert torch.equal(fitted(), fitted())
    with pytest.raises(ValueError, match="no parameters"):
        fit_prior(StandardNormal(2).double(), z, epochs=1)


def test_fit_prior_moves_only_a_vamp_priors_pseudo_inputs() -> None:
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(4, 4)).double()
    prior = VampPrior(2, (1, 2, 2), 3).double().bind_encoder(lambda x: encoder(x).chunk(2, dim=-1))
    enc_before = [p.detach().clone() for p in encoder.parameters()]
    pseudo_before = prior.pseudo_logits.detach().clone()
    fit_prior(prior, _latents(200, 0, dim=2), epochs=2, batch_size=50, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(enc_before, encoder.parameters(), strict=True))
    assert not torch.equal(prior.pseudo_logits, pseudo_before)


def test_two_stage_vae_fits_the_latents() -> None:
    z, test = _latents(2000, 0, dim=2), _latents(1000, 1, dim=2)
    vae = fit_two_stage_vae(z, hidden=64, layers=2, epochs=40, batch_size=100, lr=2e-3, seed=0, n_importance=128)
    assert isinstance(vae, TwoStageVAE) and not vae.training
    # γ is the stored closed form: the per-dimension reconstruction error, well below the latents' variance
    assert 0 < float(vae.gamma) < 0.2 * float(z.var(0).mean())
    torch.manual_seed(0)
    with torch.no_grad():
        iw = vae.log_prob(test)
        elbo = torch.stack([vae.elbo(test) for _ in range(8)]).mean(0)
    # the importance-weighted bound is above the ELBO (on average), and the fit beats N(0, I) and the Gaussian
    assert float(iw.mean()) >= float(elbo.mean())
    assert float(iw.mean()) > _gaussian_ll(z, test) + 0.1, (float(iw.mean()), _gaussian_ll(z, test))
    # Dai & Wipf's sampler, G(ε), lands where the latents are
    with torch.no_grad():
        draws = vae.sample(5000, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(draws.mean(0), z.mean(0), atol=0.3, rtol=0)


def test_two_stage_log_prob_is_the_importance_weighted_estimate() -> None:
    """log p̂(z) is the log-mean-exp of the K importance weights p(z|u_k) p(u_k) / q(u_k|z), written out here
    with torch.distributions from the model's own encoder, decoder and γ, on the same draws."""
    torch.manual_seed(0)
    vae = TwoStageVAE(2, hidden=8, layers=1, n_importance=16, gamma=0.5).double()
    z = _latents(5, 2, dim=2)
    torch.manual_seed(7)
    with torch.no_grad():
        got = vae.log_prob(z)
    torch.manual_seed(7)
    with torch.no_grad():
        mean, logvar = vae.encode(z)
        eps = torch.randn(16, 5, 2, dtype=torch.float64)
        u = mean + torch.exp(0.5 * logvar) * eps
        normal = torch.distributions.Normal
        log_w = (normal(vae.decode(u), vae.gamma.sqrt()).log_prob(z).sum(-1) + normal(0.0, 1.0).log_prob(u).sum(-1)
                 - normal(mean, torch.exp(0.5 * logvar)).log_prob(u).sum(-1))
    torch.testing.assert_close(got, torch.logsumexp(log_w, 0) - math.log(16), rtol=1e-10, atol=1e-10)
