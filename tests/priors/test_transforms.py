"""Every flow transform in float64, each randomised first (a fresh coupling is a fixed contraction, a fresh ActNorm
the identity): ActNorm, the A.1 coupling and RealNVP cascades, LULinear and Glow steps, zuko's MAF and NSF layers
behind our Transform contract — one parametrised test per property over every class."""

from __future__ import annotations

import io

import pytest
import torch
from torch import Tensor
from torch.autograd.functional import jacobian

from latentprior.priors import (
    ActNorm,
    AffineCoupling,
    AutoregressivePrior,
    ComposedTransform,
    GlowPrior,
    LULinear,
    RealNVPPrior,
    Transform,
)
from latentprior.priors.autoregressive import maf_layer, nsf_layer
from latentprior.priors.glow import glow_transform

DIM, COND, HIDDEN = 5, 3, 16


def randomise(module: torch.nn.Module, seed: int = 0, scale: float = 0.3) -> torch.nn.Module:
    """Add N(0, scale²) noise to every parameter: zero last layers, identity ActNorms and the LU factors of a
    rotation all become generic values, so no test below passes on a trivial map."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


# name -> (factory, dim, cond_dim)
TRANSFORMS = {
    "actnorm": (lambda: ActNorm(DIM), DIM, 0),
    "coupling": (lambda: AffineCoupling(DIM, HIDDEN, swap=False), DIM, 0),
    "coupling-swap": (lambda: AffineCoupling(DIM, HIDDEN, swap=True), DIM, 0),
    "coupling-cond": (lambda: AffineCoupling(DIM, HIDDEN, swap=True, cond_dim=COND), DIM, COND),
    "composed": (lambda: ComposedTransform([AffineCoupling(DIM, HIDDEN), ActNorm(DIM)]), DIM, 0),
    "realnvp": (lambda: RealNVPPrior(DIM, 3, HIDDEN).transforms, DIM, 0),
    "realnvp-cond": (lambda: RealNVPPrior(DIM, 3, HIDDEN, cond_dim=COND).transforms, DIM, COND),
    "realnvp-even-dim": (lambda: RealNVPPrior(4, 3, HIDDEN).transforms, 4, 0),
    "lu-linear": (lambda: LULinear(DIM), DIM, 0),
    "glow-steps": (lambda: glow_transform(DIM, 2, HIDDEN), DIM, 0),
    "glow-even-dim": (lambda: GlowPrior(4, 2, HIDDEN).transforms, 4, 0),
    "maf-layer": (lambda: maf_layer(DIM, HIDDEN, 0), DIM, 0),
    "maf-layer-reversed": (lambda: maf_layer(DIM, HIDDEN, 1), DIM, 0),
    "maf-layer-cond": (lambda: maf_layer(DIM, HIDDEN, 0, cond_dim=COND), DIM, COND),
    "nsf-layer": (lambda: nsf_layer(DIM, HIDDEN, 0, bins=6), DIM, 0),
    "nsf-layer-cond": (lambda: nsf_layer(DIM, HIDDEN, 1, cond_dim=COND, bins=4), DIM, COND),
    "maf-prior": (lambda: AutoregressivePrior("maf", DIM, 2, HIDDEN).transforms, DIM, 0),
    "nsf-prior": (lambda: AutoregressivePrior("nsf", DIM, 2, HIDDEN, bins=5).transforms, DIM, 0),
}


def _make(name: str, seed: int = 0) -> tuple[Transform, int, int]:
    factory, dim, cond_dim = TRANSFORMS[name]
    torch.manual_seed(seed)  # LULinear draws its rotation, the nets their weights
    return randomise(factory().double(), seed=seed), dim, cond_dim


def _inputs(batch: int, dim: int, cond_dim: int, seed: int = 1) -> tuple[Tensor, Tensor | None]:
    g = torch.Generator().manual_seed(seed)
    z = 1.5 * torch.randn(batch, dim, generator=g, dtype=torch.float64)  # mostly inside the spline's [-5, 5]
    c = torch.randn(batch, cond_dim, generator=g, dtype=torch.float64) if cond_dim else None
    return z, c


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_inverse_undoes_forward(name: str) -> None:
    t, dim, cond_dim = _make(name)
    z, c = _inputs(16, dim, cond_dim)
    u, ld = t(z, c)
    assert u.shape == z.shape and ld.shape == (16,)
    assert not torch.allclose(u, z, atol=1e-3), "a randomised transform should not be the identity"
    z_back, ld_inv = t.inverse(u, c)
    torch.testing.assert_close(z_back, z, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(ld_inv, -ld, atol=1e-9, rtol=1e-9)
    u2, _ = t(t.inverse(z, c)[0], c)  # and from the base side
    torch.testing.assert_close(u2, z, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_log_det_matches_autograd_jacobian(name: str) -> None:
    t, dim, cond_dim = _make(name)
    batch = 3
    z, c = _inputs(batch, dim, cond_dim, seed=2)
    for fn in (t.forward, t.inverse):
        jac = jacobian(lambda x_, fn=fn: fn(x_, c)[0], z)  # (B, D, B, D)
        _, ld = fn(z, c)
        for i in range(batch):
            _, logabsdet = torch.linalg.slogdet(jac[i, :, i, :])
            torch.testing.assert_close(ld[i], logabsdet, atol=1e-9, rtol=1e-9)
            others = torch.cat([jac[i, :, :i, :].flatten(), jac[i, :, i + 1 :, :].flatten()])
            assert torch.all(others == 0), "examples in a batch must not interact"


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_every_parameter_gets_a_gradient(name: str) -> None:
    t, dim, cond_dim = _make(name)
    for fn in (t.forward, t.inverse):
        z, c = _inputs(32, dim, cond_dim)
        if c is not None:
            c.requires_grad_(True)
        t.zero_grad(set_to_none=True)
        out, ld = fn(z, c)
        (out.pow(2).sum() + ld.sum()).backward()
        for pname, p in t.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, (fn.__name__, pname)
        if c is not None:
            assert c.grad is not None and c.grad.abs().sum() > 0


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_state_dict_round_trip(name: str) -> None:
    t, dim, cond_dim = _make(name, seed=0)
    fresh, _, _ = _make(name, seed=7)
    z, c = _inputs(10, dim, cond_dim)
    with torch.no_grad():
        before = t(z, c)
        assert not torch.allclose(fresh(z, c)[0], before[0])
        buffer = io.BytesIO()
        torch.save(t.state_dict(), buffer)
        buffer.seek(0)
        fresh.load_state_dict(torch.load(buffer, weights_only=True))
        after = fresh(z, c)
    assert torch.equal(after[0], before[0]) and torch.equal(after[1], before[1])


def test_lu_linear_is_the_matrix_p_l_u_and_mixes_every_dimension() -> None:
    torch.manual_seed(0)
    t = randomise(LULinear(DIM).double())
    w = t.weight()
    l_mat, u_mat = t._factors()
    torch.testing.assert_close(w, t.perm @ l_mat @ u_mat)
    assert torch.equal(torch.triu(l_mat, 1), torch.zeros_like(l_mat)) and torch.all(torch.diagonal(l_mat) == 1)
    assert torch.equal(torch.tril(u_mat, -1), torch.zeros_like(u_mat))
    z, _ = _inputs(4, DIM, 0)
    torch.testing.assert_close(t(z)[0], z @ w.T)
    torch.testing.assert_close(t(z)[1], torch.linalg.slogdet(w)[1].expand(4))
    assert torch.all(w != 0), "a rotation's LU factors mix every dimension into every output"


def test_fresh_lu_linear_is_a_rotation() -> None:
    """Glow's initialisation: W starts orthogonal, so log|det W| = 0 and the flow starts volume-preserving."""
    torch.manual_seed(3)
    t = LULinear(6).double()
    w = t.weight()
    torch.testing.assert_close(w @ w.T, torch.eye(6, dtype=torch.float64), atol=1e-5, rtol=0)
    assert abs(float(t.log_s.detach().sum())) < 1e-5


def test_glow_coupling_sees_every_dimension_through_the_mixing() -> None:
    """In one Glow step every output depends on every input (the LU mixing before the coupling); a single
    RealNVP coupling leaves half of z untouched."""
    torch.manual_seed(0)
    t = randomise(glow_transform(DIM, 1, HIDDEN).double())
    z, _ = _inputs(1, DIM, 0)
    jac = jacobian(lambda x: t(x)[0], z)[0, :, 0, :]  # (D, D)
    assert torch.all(jac.abs() > 0)


def test_autoregressive_layers_are_triangular_in_their_order() -> None:
    """MAF/NSF: output d depends on inputs up to d in the layer's order only (lower triangular for layer 0,
    upper for the reversed layer 1), so the log-det is the sum of the diagonal's logs."""
    for i, tri in ((0, torch.tril), (1, torch.triu)):
        for layer in (maf_layer(DIM, HIDDEN, i), nsf_layer(DIM, HIDDEN, i, bins=4)):
            t = randomise(layer.double(), seed=i)
            z, _ = _inputs(1, DIM, 0, seed=4)
            jac = jacobian(lambda x, t=t: t(x)[0], z)[0, :, 0, :]
            assert torch.equal(jac, tri(jac)) and not torch.equal(jac, torch.diag(torch.diagonal(jac)))


def test_spline_is_the_identity_outside_its_box_and_checks_shapes() -> None:
    t = randomise(nsf_layer(2, HIDDEN, 0, bins=4).double())
    far = torch.tensor([[6.0, -7.0], [-9.0, 5.5]], dtype=torch.float64)
    u, ld = t(far)
    torch.testing.assert_close(u, far)
    torch.testing.assert_close(ld, torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"expected shape \(B, 2\)"):
        t(torch.zeros(3, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="unconditional"):
        t(far, torch.zeros(2, 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="bins >= 2"):
        nsf_layer(2, HIDDEN, bins=1)


def test_new_flows_compose_as_our_cascade() -> None:
    prior = AutoregressivePrior("nsf", 3, 2, HIDDEN, bins=4)
    assert isinstance(prior.transforms, ComposedTransform) and len(prior.transforms) == 4
    assert list(prior.state_dict())[0].startswith("transforms.0.")  # ActNorm first, then the zuko layer
    assert any(k.startswith("transforms.1.lazy.hyper.") for k in prior.state_dict())
