"""The cvae objective: the KL annealing schedule, the closed-form KL, gradient isolation, the saved step count."""

from __future__ import annotations

import pytest
import torch

from latentprior.nets.unet import UNetDecoder, UNetEncoder
from latentprior.objectives.cvae import KL_FLOOR, kl_to_prior, kl_weight
from latentprior.priors.conditional_flow import conditional_flow
from tests.builders import COND_DIM, COND_SIDE, randomised

DIM, SIDE = COND_DIM, COND_SIDE


COND = SIDE * SIDE


def test_kl_annealing_follows_the_variational_unet_schedule():
    # linear from 1e-6 at `start` to 1 at `end`, clipped (their code: start = T/2, end = 3T/4)
    assert kl_weight(0, 500, 750) == KL_FLOOR
    assert kl_weight(500, 500, 750) == KL_FLOOR
    assert kl_weight(625, 500, 750) == pytest.approx(KL_FLOOR + (1 - KL_FLOOR) * 0.5)
    assert kl_weight(700, 500, 750) == pytest.approx(KL_FLOOR + (1 - KL_FLOOR) * 0.8)
    assert kl_weight(750, 500, 750) == 1.0
    assert kl_weight(10_000, 500, 750) == 1.0
    assert kl_weight(0, 0, 0) == 1.0  # no annealing


def test_closed_form_kl_to_the_gaussian_prior_matches_torch():
    prior = randomised(conditional_flow(DIM, 0, 16, cond_shape=(1, SIDE, SIDE), embed_dim=6)).double()
    g = torch.Generator().manual_seed(1)
    mean, logvar = torch.randn(2, 3, DIM, generator=g, dtype=torch.float64)
    c = torch.rand(3, COND, generator=g, dtype=torch.float64)
    loc = prior.base.mean(prior.embedding(c))
    want = torch.distributions.kl_divergence(torch.distributions.Normal(mean, (0.5 * logvar).exp()),
                                             torch.distributions.Normal(loc, 1.0)).sum(-1)
    torch.testing.assert_close(kl_to_prior(prior, mean, mean, logvar, c), want)


def _model(layers: int, **kwargs):
    from latentprior.models.autoencoder import LatentAutoencoder

    torch.manual_seed(0)
    prior = conditional_flow(DIM, layers, 16, cond_shape=(1, 28, 28), embed_dim=6, embed_width=4)
    return LatentAutoencoder(UNetEncoder(1, 28, 2 * DIM, width=0.125), UNetDecoder(DIM, 1, 28, width=0.125),
                             randomised(prior, 1), condition="downsample7", latent_dim=DIM, **kwargs)


def _objective(model, beta: float, **kwargs):
    from latentprior.config import ObjectiveConfig
    from latentprior.objectives.cvae import ConditionalBilevel

    return ConditionalBilevel(model, ObjectiveConfig(kind="cvae", beta=beta, **kwargs))


@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_without_the_kl_term_the_encoder_gets_no_gradient_from_the_prior(beta):
    model = _model(layers=2)
    x = torch.rand(4, 1, 28, 28)
    updates = _objective(model, beta).updates(x)
    ae, prior_update = next(updates), next(updates)
    enc, prior = list(model.encoder.parameters()), list(model.prior.parameters())
    # the prior's own update never reaches the encoder (its codes are detached)
    assert all(g is None for g in torch.autograd.grad(prior_update.loss, enc, allow_unused=True))
    # F reaches the prior's parameters only through the KL term
    grads = torch.autograd.grad(ae.loss, prior, allow_unused=True)
    if beta == 0:
        assert all(g is None for g in grads)
    else:
        assert any(g is not None and g.abs().sum() > 0 for g in grads)
        assert ae.metrics["kl_weight"] == 1.0 and ae.metrics["kl"] > 0


def test_the_kl_weight_follows_the_objectives_own_step_count_and_is_saved():
    model = _model(layers=0)
    obj = _objective(model, 1.0, kl_anneal_start=1, kl_anneal_end=3)
    from latentprior.objectives.base import run_updates

    x = torch.rand(4, 1, 28, 28)
    weights = [run_updates(obj, x)["autoencoder/kl_weight"].item() for _ in range(4)]
    assert weights == pytest.approx([KL_FLOOR, KL_FLOOR, kl_weight(2, 1, 3), 1.0])
    fresh = _objective(_model(layers=0), 1.0, kl_anneal_start=1, kl_anneal_end=3)
    fresh.load_state_dict(obj.state_dict())
    assert fresh.joint_steps == 4


