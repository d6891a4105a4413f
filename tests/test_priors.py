"""Tests for latentprior.priors: flows (in float64, with zero-initialised layers randomised first), the
standard normal, the adversarial prior and discriminator, and the builder."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import Tensor
from torch.autograd.functional import jacobian

from latentprior.priors import (
    ActNorm,
    AffineCoupling,
    Discriminator,
    ImplicitPriorError,
    MLPPrior,
    Prior,
    RealNVPPrior,
    StandardNormal,
    Transform,
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


class FlowAsTransform(Transform):
    """A RealNVPPrior's whole flow seen through the Transform interface, so one test covers both."""

    def __init__(self, prior: RealNVPPrior) -> None:
        super().__init__()
        self.prior = prior

    def forward(self, z: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.prior.to_base(z, c)

    def inverse(self, u: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.prior.from_base(u, c)


# name -> (factory, cond_dim)
TRANSFORMS = {
    "actnorm": (lambda: ActNorm(DIM), 0),
    "coupling": (lambda: AffineCoupling(DIM, HIDDEN, swap=False), 0),
    "coupling-swap": (lambda: AffineCoupling(DIM, HIDDEN, swap=True), 0),
    "coupling-cond": (lambda: AffineCoupling(DIM, HIDDEN, swap=True, cond_dim=COND), COND),
    "flow": (lambda: FlowAsTransform(RealNVPPrior(DIM, 3, HIDDEN)), 0),
    "flow-cond": (lambda: FlowAsTransform(RealNVPPrior(DIM, 3, HIDDEN, cond_dim=COND)), COND),
    "flow-even-dim": (lambda: FlowAsTransform(RealNVPPrior(4, 2, HIDDEN)), 0),
}

# name -> factory; every Prior class, conditional flow included
PRIORS = {
    "normal": lambda: StandardNormal(DIM),
    "realnvp": lambda: randomise(RealNVPPrior(DIM, 3, HIDDEN)),
    "realnvp-cond": lambda: randomise(RealNVPPrior(DIM, 3, HIDDEN, cond_dim=COND)),
    "mlp": lambda: MLPPrior(DIM, HIDDEN, 2, noise_dim=7),
}


def _inputs(batch: int, cond_dim: int, seed: int = 1) -> tuple[Tensor, Tensor | None]:
    g = torch.Generator().manual_seed(seed)
    z = 2 * torch.randn(batch, DIM, generator=g, dtype=torch.float64)
    c = torch.randn(batch, cond_dim, generator=g, dtype=torch.float64) if cond_dim else None
    return z, c


def _make_transform(name: str) -> tuple[Transform, int]:
    factory, cond_dim = TRANSFORMS[name]
    return randomise(factory()).double(), cond_dim


@pytest.mark.parametrize("name", [n for n in TRANSFORMS if n != "flow-even-dim"])
def test_inverse_undoes_forward(name: str) -> None:
    t, cond_dim = _make_transform(name)
    z, c = _inputs(16, cond_dim)
    u, ld = t(z, c)
    assert u.shape == z.shape and ld.shape == (16,)
    assert not torch.allclose(u, z, atol=1e-3), "randomised transform should not be the identity"
    z_back, ld_inv = t.inverse(u, c)
    torch.testing.assert_close(z_back, z, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(ld_inv, -ld, atol=1e-10, rtol=1e-10)
    # and the other way round, starting from the base space
    u2, _ = t(t.inverse(z, c)[0], c)
    torch.testing.assert_close(u2, z, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_log_det_matches_autograd_jacobian(name: str) -> None:
    t, cond_dim = _make_transform(name)
    dim = 4 if name == "flow-even-dim" else DIM
    batch = 3
    g = torch.Generator().manual_seed(2)
    z = 2 * torch.randn(batch, dim, generator=g, dtype=torch.float64)
    c = torch.randn(batch, cond_dim, generator=g, dtype=torch.float64) if cond_dim else None

    for fn, x, sign in ((t.forward, z, 1.0), (t.inverse, z, -1.0)):
        jac = jacobian(lambda x_, fn=fn: fn(x_, c)[0], x)  # (B, D, B, D)
        _, ld = fn(x, c)
        for i in range(batch):
            block = jac[i, :, i, :]
            sgn, logabsdet = torch.linalg.slogdet(block)
            assert sgn == 1  # positive scales everywhere: the flow preserves orientation
            torch.testing.assert_close(ld[i], logabsdet, atol=1e-10, rtol=1e-10)
            others = torch.cat([jac[i, :, :i, :].flatten(), jac[i, :, i + 1 :, :].flatten()])
            assert torch.all(others == 0), "examples in a batch must not interact"
        if sign < 0:
            # the inverse's log-det at u = f(z) is minus the forward log-det at z
            u, ld_fwd = t(z, c)
            torch.testing.assert_close(t.inverse(u, c)[1], -ld_fwd, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("cond_dim", [0, COND])
def test_every_flow_parameter_gets_a_gradient(cond_dim: int) -> None:
    torch.manual_seed(0)
    prior = randomise(RealNVPPrior(DIM, 3, HIDDEN, cond_dim=cond_dim))
    z = torch.randn(64, DIM)
    c = torch.randn(64, cond_dim, requires_grad=True) if cond_dim else None
    prior.log_prob(z, c).mean().backward()
    for name, p in prior.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    if c is not None:
        assert c.grad is not None and c.grad.abs().sum() > 0


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
    assert not prior.has_density and prior.learnable
    with pytest.raises(ImplicitPriorError, match="no log_prob"):
        prior.log_prob(torch.randn(4, DIM))
    assert prior.sample(9).shape == (9, DIM)


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


def test_build_prior_errors() -> None:
    with pytest.raises(ValueError, match="adversarial, normal, realnvp") as info:
        build_prior("glow", DIM, layers=2, hidden=HIDDEN)
    assert "'glow'" in str(info.value)
    with pytest.raises(ValueError, match="noise_dim"):
        build_prior("realnvp", DIM, layers=2, hidden=HIDDEN, noise_dim=4)
    with pytest.raises(ValueError, match="cond_dim"):
        build_prior("adversarial", DIM, layers=2, hidden=HIDDEN, cond_dim=2)
    assert build_prior("realnvp", DIM, layers=2, hidden=HIDDEN, cond_dim=COND).cond_dim == COND


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
