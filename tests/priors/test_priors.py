"""Tests for latentprior.priors: flow priors (in float64, with zero-initialised layers randomised first), the
standard normal, the adversarial prior and discriminator, and the builder (the transforms' own properties:
test_transforms.py)."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import Tensor

from latentprior.priors import (
    ActNorm,
    AffineCoupling,
    ComposedTransform,
    Discriminator,
    FlowPrior,
    ImplicitPriorError,
    MLPPrior,
    Prior,
    RealNVPPrior,
    StandardNormal,
    build_discriminator,
    build_prior,
)

DIM = 5  # odd on purpose: the halves of a coupling have different sizes
COND = 3
HIDDEN = 16
SIGMOID_2 = 1 / (1 + math.exp(-2.0))  # σ of a coupling whose last layer is zero


def randomise(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Replace the identity-like initial values (zero last layers, ActNorm γ = 1, β = 0) by random ones.

    A freshly initialised coupling has μ = 0 and a constant σ; invertibility and log-det tests on it
    would not exercise the conditioner network at all.
    """
    g = torch.Generator().manual_seed(seed)

    def rand(p: Tensor, scale: float) -> Tensor:
        return scale * torch.randn(p.shape, generator=g)

    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, ActNorm):
                m.log_scale.copy_(rand(m.log_scale, 0.3))
                m.bias.copy_(rand(m.bias, 0.5))
            elif isinstance(m, AffineCoupling):
                last = m.net[-1]
                last.weight.copy_(rand(last.weight, 0.3))
                last.bias.copy_(rand(last.bias, 0.3))
    return module


# name -> factory; every Prior class, conditional flow included
PRIORS = {
    "normal": lambda: StandardNormal(DIM),
    "realnvp": lambda: randomise(RealNVPPrior(DIM, 3, HIDDEN)),
    "realnvp-cond": lambda: randomise(RealNVPPrior(DIM, 3, HIDDEN, cond_dim=COND)),
    "mlp": lambda: MLPPrior(DIM, HIDDEN, 2, noise_dim=7),
}


def _inputs(batch: int, cond_dim: int, seed: int = 1, dim: int = DIM) -> tuple[Tensor, Tensor | None]:
    g = torch.Generator().manual_seed(seed)
    z = 2 * torch.randn(batch, dim, generator=g, dtype=torch.float64)
    c = torch.randn(batch, cond_dim, generator=g, dtype=torch.float64) if cond_dim else None
    return z, c


def test_composed_transform_applies_its_layers_in_order() -> None:
    """forward is f_2(f_1(z)) with the log-dets added; inverse undoes f_2 first (checked layer by layer, so a
    cascade run in the wrong order, or one that drops a log-det, fails even where it stays invertible)."""
    first, second = randomise(AffineCoupling(DIM, HIDDEN)).double(), randomise(ActNorm(DIM), seed=1).double()
    composed = ComposedTransform([first, second])
    z, _ = _inputs(8, 0)
    u1, ld1 = first(z)
    u2, ld2 = second(u1)
    u, ld = composed(z)
    assert torch.equal(u, u2)
    torch.testing.assert_close(ld, ld1 + ld2, atol=1e-12, rtol=0)
    v1, _ = second.inverse(z)
    assert torch.equal(composed.inverse(z)[0], first.inverse(v1)[0])
    assert len(composed) == 2 and isinstance(composed[1:], ComposedTransform)
    empty_u, empty_ld = ComposedTransform()(z)
    assert torch.equal(empty_u, z) and torch.equal(empty_ld, torch.zeros(8, dtype=torch.float64))
    with pytest.raises(TypeError, match="composes Transforms"):
        ComposedTransform([torch.nn.Linear(2, 2)])


def test_realnvp_is_a_flow_prior_over_a_standard_normal() -> None:
    """The prior is its cascade plus the base: log p(z) = log N(f(z); 0, I) + log|det df/dz|, and its
    layers keep the checkpoint keys ``transforms.<i>.<name>`` (the base's constants are not saved)."""
    prior = randomise(RealNVPPrior(DIM, 3, HIDDEN)).double()
    assert isinstance(prior, FlowPrior) and isinstance(prior.base, StandardNormal)
    assert prior.transform is prior.transforms and len(prior.transforms) == 5
    assert list(prior.state_dict())[:2] == ["transforms.0.log_scale", "transforms.0.bias"]
    assert all(k.startswith("transforms.") for k in prior.state_dict())
    z, _ = _inputs(16, 0)
    u, ld = prior.to_base(z)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(u).sum(-1) + ld
    torch.testing.assert_close(prior.log_prob(z), expected, atol=1e-12, rtol=1e-12)
    # sampling is the inverse of base draws: the same generator gives f^{-1} of the same u
    u0 = prior.base.sample(6, generator=torch.Generator().manual_seed(3))
    z0 = prior.sample(6, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(prior.from_base(u0)[0], z0, atol=0, rtol=0)


def test_flow_prior_wraps_a_single_transform() -> None:
    coupling = randomise(AffineCoupling(DIM, HIDDEN)).double()
    prior = FlowPrior(coupling, StandardNormal(DIM).double())
    assert isinstance(prior.transforms, ComposedTransform) and prior.transforms[0] is coupling
    z, _ = _inputs(8, 0)
    torch.testing.assert_close(prior.to_base(z)[0], coupling(z)[0], atol=0, rtol=0)
    with pytest.raises(ValueError, match="needs a density"):
        FlowPrior(coupling, MLPPrior(DIM, HIDDEN, 1))


def test_conditional_flow_log_prob_depends_on_the_context() -> None:
    prior = randomise(RealNVPPrior(DIM, 3, HIDDEN, cond_dim=COND)).double()
    z, c = _inputs(16, COND)
    lp = prior.log_prob(z, c)
    assert (prior.log_prob(z, c + 0.5) - lp).abs().min() > 1e-6
    torch.testing.assert_close(prior.log_prob(z, c.clone()), lp, atol=0, rtol=0)
    # sampling goes through the same c: other contexts give other draws from the same noise
    s1 = prior.sample(16, c, generator=torch.Generator().manual_seed(0))
    s2 = prior.sample(16, c + 0.5, generator=torch.Generator().manual_seed(0))
    assert (s1 - s2).abs().amax(-1).min() > 1e-6


def test_standard_normal_log_prob_matches_torch_distributions() -> None:
    prior = StandardNormal(DIM).double()
    z, _ = _inputs(12, 0)
    torch.testing.assert_close(prior.log_prob(z), torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1))
    # through the loc/scale buffers (what a base with a learned mean will set): not only the N(0, I) case
    g = torch.Generator().manual_seed(4)
    prior.loc.copy_(torch.randn(DIM, generator=g))
    prior.scale.copy_(torch.rand(DIM, generator=g) + 0.5)
    expected = torch.distributions.Normal(prior.loc, prior.scale).log_prob(z).sum(-1)
    torch.testing.assert_close(prior.log_prob(z), expected, atol=1e-12, rtol=1e-12)
    eps = torch.randn(5, DIM, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    draws = prior.sample(5, generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(draws, prior.loc + prior.scale * eps, atol=0, rtol=0)
    assert prior.state_dict() == {}  # constants: nothing to checkpoint


@pytest.mark.parametrize("cond_dim", [0, 2])
def test_2d_flow_density_integrates_to_one(cond_dim: int) -> None:
    torch.manual_seed(0)
    prior = randomise(RealNVPPrior(2, 4, 32, cond_dim=cond_dim), seed=3).double()
    n = 400
    axis = torch.linspace(-8, 8, n, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis)  # (n², 2)
    c = torch.full((n * n, cond_dim), 0.7, dtype=torch.float64) if cond_dim else None
    with torch.no_grad():
        density = prior.log_prob(grid, c).exp()
    cell = (axis[1] - axis[0]) ** 2
    assert abs(float(density.sum() * cell) - 1.0) < 1e-2


@pytest.mark.parametrize("name", list(PRIORS))
def test_state_dict_round_trip(name: str) -> None:
    torch.manual_seed(0)
    prior = PRIORS[name]()
    torch.manual_seed(1)
    fresh = PRIORS[name]()
    if isinstance(fresh, RealNVPPrior):
        randomise(fresh, seed=7)
    if isinstance(prior, MLPPrior):
        prior.sample(32)  # train mode: moves the BN running statistics away from their defaults
        prior.eval(), fresh.eval()

    def output(p: Prior) -> Tensor:
        if not p.has_density:
            return p.sample(10, generator=torch.Generator().manual_seed(5))
        z, c = _inputs(10, p.cond_dim if isinstance(p, RealNVPPrior) else 0)
        return p.log_prob(z.float(), None if c is None else c.float())

    with torch.no_grad():
        before = output(prior)
        if name != "normal":  # the standard normal has no state: any two instances agree
            assert not torch.allclose(output(fresh), before)
        buffer = io.BytesIO()
        torch.save(prior.state_dict(), buffer)
        buffer.seek(0)
        fresh.load_state_dict(torch.load(buffer, weights_only=True))
        assert torch.equal(output(fresh), before)


DEVICES = ["cpu", "meta"]  # meta: a second device without a GPU, catching anything hard-wired to the CPU
if torch.cuda.is_available():
    DEVICES.append("cuda")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", list(PRIORS))
def test_sample_shape_device_dtype(name: str, dtype: torch.dtype, device: str) -> None:
    prior = PRIORS[name]().to(device=device, dtype=dtype)
    c = torch.randn(7, COND, device=device, dtype=dtype) if name == "realnvp-cond" else None
    z = prior.sample(7, c)
    assert z.shape == (7, DIM) and z.dtype == dtype and z.device.type == device
    if prior.has_density:
        lp = prior.log_prob(z, c)
        assert lp.shape == (7,) and lp.dtype == dtype and lp.device.type == device


@pytest.mark.parametrize("name", list(PRIORS))
def test_generator_makes_sampling_reproducible(name: str) -> None:
    prior = PRIORS[name]().eval()
    c = torch.randn(6, COND) if name == "realnvp-cond" else None

    def draw(seed: int) -> Tensor:
        return prior.sample(6, c, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(draw(0), draw(0))
    assert not torch.allclose(draw(0), draw(1))


def test_fresh_flow_is_a_fixed_diagonal_contraction() -> None:
    """Documents the zero-init: ActNorm starts as the identity, and a coupling whose last layer is zero has
    μ = 0 and σ = sigmoid(0 + 2), so it is *not* the identity but ``zb -> sigmoid(2) zb``. The fresh flow is
    therefore u_d = sigmoid(2)^k_d z_d, with k_d the number of couplings that transform dimension d, and
    p(z) = N(0, diag(sigmoid(2)^(-2 k_d)))."""
    n_layers = 3
    prior = RealNVPPrior(DIM, n_layers, HIDDEN).double()
    # coupling t transforms the second half (d >= D//2) when t is even, the first half when t is odd
    k = torch.tensor(
        [sum((d >= DIM // 2) if t % 2 == 0 else (d < DIM // 2) for t in range(n_layers)) for d in range(DIM)],
        dtype=torch.float64,
    )
    assert k.min() >= 1  # every dimension is transformed by some coupling
    z, _ = _inputs(32, 0)
    u, logdet = prior.to_base(z)
    torch.testing.assert_close(u, z * SIGMOID_2**k)
    torch.testing.assert_close(logdet, (k * math.log(SIGMOID_2)).sum().expand(32))
    expected = torch.distributions.Normal(0.0, SIGMOID_2 ** (-k)).log_prob(z).sum(-1)
    torch.testing.assert_close(prior.log_prob(z), expected)


def test_alternating_couplings_transform_every_dimension() -> None:
    prior = RealNVPPrior(DIM, 2, HIDDEN)
    for m in prior.modules():
        if isinstance(m, AffineCoupling):
            randomise(m)  # ActNorm stays the identity: only the couplings act
            with torch.no_grad():
                m.net[-1].bias.zero_()  # μ and log σ then depend on the conditioning half
    z, _ = _inputs(8, 0)
    u, _ = prior.to_base(z.float())
    assert torch.all((u - z.float()).abs().amax(0) > 1e-3)


def test_flow_and_coupling_reject_dim_below_two_and_wrong_context() -> None:
    with pytest.raises(ValueError, match="dim >= 2"):
        RealNVPPrior(1, 2, HIDDEN)
    prior = RealNVPPrior(DIM, 2, HIDDEN, cond_dim=COND)
    with pytest.raises(ValueError, match="needs a context"):
        prior.log_prob(torch.randn(4, DIM))
    with pytest.raises(ValueError, match="unconditional"):
        RealNVPPrior(DIM, 2, HIDDEN).log_prob(torch.randn(4, DIM), torch.randn(4, COND))


def test_mlp_prior_is_implicit() -> None:
    prior = MLPPrior(DIM, HIDDEN, 3, noise_dim=11)
    assert not prior.has_density
    with pytest.raises(ImplicitPriorError, match="no log_prob"):
        prior.log_prob(torch.randn(4, DIM))
    assert prior.sample(9).shape == (9, DIM)


def test_mlp_prior_eval_sample_is_its_net_on_the_same_noise() -> None:
    torch.manual_seed(0)
    prior = MLPPrior(DIM, HIDDEN, 2, noise_dim=7)
    prior.sample(64)  # train mode: running statistics move off their defaults, so eval mode is not a no-op
    prior.eval()
    eps = torch.randn(10, 7, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        draws = prior.sample(10, generator=torch.Generator().manual_seed(3))
        expected = prior.net(eps)
    assert torch.equal(draws, expected)
    # by hand: Linear -> BN(running statistics) -> ReLU, twice, then the output Linear
    h = eps
    for lin, bn in ((prior.net[0], prior.net[1]), (prior.net[3], prior.net[4])):
        x = h @ lin.weight.T
        h = torch.relu((x - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias)
    torch.testing.assert_close(draws, h @ prior.net[6].weight.T + prior.net[6].bias, atol=1e-5, rtol=1e-5)


def test_mlp_prior_batch_norm_train_versus_eval() -> None:
    torch.manual_seed(0)
    prior = MLPPrior(DIM, HIDDEN, 2)
    bn = prior.net[1]
    eps = torch.randn(32, DIM)

    prior.train()
    before = bn.running_mean.clone()
    out = prior.net(eps)
    assert not torch.equal(bn.running_mean, before), "train mode updates the running statistics"
    # train mode normalises with batch statistics: a draw depends on the rest of its batch
    assert not torch.allclose(prior.net(eps[:4]), out[:4])

    prior.eval()
    before = bn.running_mean.clone()
    out = prior.net(eps)
    assert torch.equal(bn.running_mean, before), "eval mode leaves the running statistics alone"
    torch.testing.assert_close(prior.net(eps[:4]), out[:4])


def test_discriminator_returns_one_logit_per_example() -> None:
    disc = build_discriminator(DIM, layers=2, hidden=HIDDEN)
    assert isinstance(disc, Discriminator)
    logits = disc(torch.randn(13, DIM))
    assert logits.shape == (13,)
    assert sum(isinstance(m, torch.nn.Linear) for m in disc.modules()) == 3


@pytest.mark.parametrize(
    "kind, cls", [("normal", StandardNormal), ("realnvp", RealNVPPrior), ("adversarial", MLPPrior)]
)
def test_build_prior_kinds(kind: str, cls: type) -> None:
    prior = build_prior(kind, DIM, layers=2, hidden=HIDDEN)
    assert isinstance(prior, cls) and prior.dim == DIM
    assert prior.sample(3).shape == (3, DIM)


def test_build_prior_errors_and_options() -> None:
    with pytest.raises(ValueError, match="adversarial, glow, gmm, maf, normal, nsf, realnvp, vamp") as info:
        build_prior("flowplusplus", DIM, layers=2, hidden=HIDDEN)
    assert "'flowplusplus'" in str(info.value)
    assert build_prior("realnvp", DIM, layers=2, hidden=HIDDEN, cond_dim=COND).cond_dim == COND
    assert build_prior("adversarial", DIM, layers=2, hidden=HIDDEN, noise_dim=4).noise_dim == 4


def _mixture(n: int, g: torch.Generator) -> Tensor:
    """Two well-separated Gaussians at (±2, 1), std 0.5: (n, 2)."""
    side = torch.randint(0, 2, (n, 1), generator=g) * 4.0 - 2.0
    centre = torch.cat([side, torch.ones(n, 1)], dim=1)
    return centre + 0.5 * torch.randn(n, 2, generator=g)


def test_flow_fits_a_two_component_mixture() -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    prior = RealNVPPrior(2, 4, 64)
    opt = torch.optim.Adam(prior.parameters(), lr=1e-3)
    for _ in range(300):
        loss = -prior.log_prob(_mixture(256, g)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    test = _mixture(4000, g)
    with torch.no_grad():
        flow_ll = prior.log_prob(test).mean().item()
    normal_ll = StandardNormal(2).log_prob(test).mean().item()
    # the best single Gaussian (moment-matched): a flow that only rescaled would not beat it
    gaussian_ll = (
        torch.distributions.MultivariateNormal(test.mean(0), torch.cov(test.T)).log_prob(test).mean().item()
    )
    assert flow_ll > normal_ll + 1.5, (flow_ll, normal_ll)
    assert flow_ll > gaussian_ll + 0.2, (flow_ll, gaussian_ll)
