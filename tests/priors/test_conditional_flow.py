"""p(z | y): the conditional RealNVP and its Gaussian base with a learned mean."""

from __future__ import annotations

import pytest
import torch

from latentprior.priors import FlowPrior
from latentprior.priors.conditional_flow import conditional_flow
from tests.builders import COND_DIM, COND_SIDE, randomised

DIM, SIDE = COND_DIM, COND_SIDE


COND = SIDE * SIDE


@pytest.fixture
def flow() -> FlowPrior:
    torch.manual_seed(0)
    return randomised(conditional_flow(DIM, 4, 16, cond_shape=(1, SIDE, SIDE), embed_dim=6, embed_width=4)).double()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conditional_flow_is_invertible_with_the_autograd_logdet_for_every_condition(flow, seed):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(3, DIM, generator=g, dtype=torch.float64)
    c = torch.rand(3, COND, generator=g, dtype=torch.float64)
    u, logdet = flow.to_base(z, c)
    back, inv_logdet = flow.from_base(u, c)
    torch.testing.assert_close(back, z, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(inv_logdet, -logdet, rtol=1e-10, atol=1e-10)
    for i in range(3):
        jac = torch.autograd.functional.jacobian(lambda v, i=i: flow.to_base(v[None], c[i:i + 1])[0][0], z[i])
        torch.testing.assert_close(logdet[i], torch.linalg.slogdet(jac)[1], rtol=1e-9, atol=1e-9)
    # log p(z | c) = log N(f(z); μ(E(c)), I) + log|det|, with the base mean read through the embedding
    loc = flow.base.mean(flow.embedding(c))
    want = torch.distributions.Normal(loc, 1.0).log_prob(u).sum(-1) + logdet
    torch.testing.assert_close(flow.log_prob(z, c), want)


def test_log_prob_and_samples_depend_on_the_condition(flow):
    g = torch.Generator().manual_seed(3)
    z = torch.randn(5, DIM, generator=g, dtype=torch.float64)
    c1, c2 = torch.rand(2, 5, COND, generator=g, dtype=torch.float64)
    assert (flow.log_prob(z, c1) - flow.log_prob(z, c2)).abs().min() > 1e-3
    s1 = flow.sample(5, c1, generator=torch.Generator().manual_seed(0))
    s2 = flow.sample(5, c2, generator=torch.Generator().manual_seed(0))
    assert (s1 - s2).abs().max() > 1e-3
    # every coupling, the base mean and the embedding take part: each parameter gets a gradient
    flow.log_prob(z, c1).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in flow.parameters())


def test_a_flow_without_layers_is_the_gaussian_with_a_learned_mean():
    prior = randomised(conditional_flow(DIM, 0, 16, cond_shape=(1, SIDE, SIDE), embed_dim=6)).double()
    assert len(prior.transforms) == 0
    z, c = torch.randn(4, DIM, dtype=torch.float64), torch.rand(4, COND, dtype=torch.float64)
    mean = prior.base.mean(prior.embedding(c))
    torch.testing.assert_close(prior.log_prob(z, c), torch.distributions.Normal(mean, 1.0).log_prob(z).sum(-1))


