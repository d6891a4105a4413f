"""Gradient boundaries of the bilevel objectives (paper eqs. 5-7, 12-16)."""

from __future__ import annotations

import pytest
import torch

from latentprior.config import config_from_dict
from latentprior.models import build_model
from latentprior.objectives import build_objective, run_updates
from latentprior.training.run import set_phase_mode


def _cfg(kind="vae", prior="realnvp", beta=0.0, learn_gamma=False, encoder="gaussian", loss="paper", r1=0.0):
    return config_from_dict({
        "data": {"name": "digits"},
        "net": {"width": 0.03125},
        "prior": {"kind": prior, "layers": 2, "hidden": 16, "disc_layers": 1, "disc_hidden": 16},
        "model": {"latent_dim": 4, "learn_gamma": learn_gamma, "gamma_update": "gradient", "encoder": encoder},
        "objective": {"kind": kind, "beta": beta, "adversarial_loss": loss, "r1_penalty": r1},
    })


def _randomise(module: torch.nn.Module, seed: int = 1) -> None:
    """A fresh flow is a fixed diagonal contraction (zero last layers: μ = 0, σ = sigmoid(2)); randomise it."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))


def _setup(**kw):
    torch.manual_seed(0)
    cfg = _cfg(**kw)
    model = build_model(cfg, (1, 28, 28)).double()
    _randomise(model.prior)
    obj = build_objective(cfg, model)
    x = torch.rand(6, 1, 28, 28, dtype=torch.float64)
    return model, obj, x


def _updates(obj, x, seed=0):
    torch.manual_seed(seed)
    return {u.name: u for u in obj.updates(x)}


def _grads(loss, params):
    return torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)


@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_prior_update_leaves_autoencoder_gradients_none(beta):
    model, obj, x = _setup(beta=beta)
    ups = _updates(obj, x)
    assert list(ups) == ["autoencoder", "prior"]  # the order is the algorithm
    grads = _grads(ups["prior"].loss, model.autoencoder_parameters())
    assert all(g is None for g in grads)
    # ...and the prior update does reach every prior parameter
    assert all(g is not None and g.abs().sum() > 0 for g in _grads(ups["prior"].loss, model.prior_parameters()))


def _encoder_grad(model, obj, x):
    loss = _updates(obj, x)["autoencoder"].loss
    return torch.cat([g.flatten() for g in _grads(loss, list(model.encoder.parameters()))])


@pytest.mark.parametrize("beta,should_change", [(0.0, False), (0.5, True)])
def test_encoder_gradient_depends_on_prior_only_when_beta_positive(beta, should_change):
    model, obj, x = _setup(beta=beta)
    g0 = _encoder_grad(model, obj, x)
    _randomise(model.prior, seed=7)  # perturb θ
    g1 = _encoder_grad(model, obj, x)
    changed = not torch.allclose(g0, g1, rtol=0, atol=1e-12)
    assert changed == should_change


def test_beta_positive_autoencoder_update_does_not_accumulate_into_prior():
    model, obj, x = _setup(beta=1.0)
    torch.manual_seed(0)
    for u in obj.updates(x):
        u.optimizer.zero_grad(set_to_none=True)
        u.loss.backward(inputs=u.params)
        if u.name == "autoencoder":  # F depends on θ at β > 0, but its backward must not write θ's .grad
            assert all(p.grad is None for p in model.prior_parameters())
        u.optimizer.step()


def test_learned_gamma_reaches_closed_form_optimum():
    model, obj, x = _setup(learn_gamma=True)
    assert any(p is model.variance.log_gamma for p in obj.groups["autoencoder"])
    torch.manual_seed(0)
    g = torch.rand_like(x)  # a fixed decoder mean
    opt = torch.optim.Adam([model.variance.log_gamma], lr=0.05)
    for _ in range(600):
        opt.zero_grad()
        (-model.log_px_given_z(x, g).mean()).backward()
        opt.step()
    closed_form = (x - g).pow(2).mean()  # γ* = per-pixel MSE (Dai & Wipf)
    assert model.variance.gamma.item() == pytest.approx(closed_form.item(), rel=1e-3)


def test_fixed_gamma_is_a_buffer_not_updated():
    model, obj, x = _setup(learn_gamma=False)
    assert all(p is not model.variance.log_gamma for p in obj.groups["autoencoder"])
    before = model.variance.gamma.item()
    run_updates(obj, x)
    assert model.variance.gamma.item() == before == 1.0


def test_standard_normal_prior_has_no_prior_update():
    model, obj, x = _setup(prior="normal", beta=1.0)
    assert list(_updates(obj, x)) == ["autoencoder"]


@pytest.mark.parametrize("loss", ["paper", "nonsaturating"])
def test_aae_update_boundaries(loss):
    model, obj, x = _setup(kind="aae", prior="adversarial", beta=0.0, loss=loss)
    ups = _updates(obj, x)
    assert list(ups) == ["autoencoder", "prior", "discriminator"]
    ae, pr, disc = model.autoencoder_parameters(), model.prior_parameters(), model.discriminator_parameters()
    assert all(g is None for g in _grads(ups["autoencoder"].loss, pr + disc))  # β = 0: F never sees D
    assert all(g is None for g in _grads(ups["prior"].loss, ae))
    assert all(g is None for g in _grads(ups["discriminator"].loss, ae + pr))
    assert all(g is not None for g in _grads(ups["prior"].loss, pr))
    assert all(g is not None for g in _grads(ups["discriminator"].loss, disc))


def test_aae_r1_penalty_is_the_gradient_norm_at_codes_and_trains_only_d():
    model, obj, x = _setup(kind="aae", prior="adversarial", beta=0.0, loss="nonsaturating", r1=3.0)
    _randomise(model.discriminator, seed=4)
    ups = _updates(obj, x, seed=5)
    disc = ups["discriminator"]
    ae, pr, dp = model.autoencoder_parameters(), model.prior_parameters(), model.discriminator_parameters()
    assert all(g is None for g in _grads(disc.loss, ae + pr))  # the penalty reaches neither θ nor φ
    # Recompute the penalty from the same codes: the loss is the plain g-loss plus r1/2·E|∇_z logit|².
    torch.manual_seed(5)
    model.train()
    z_q = model.posterior_sample(*model.encode(x)).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.discriminator(z_q).sum(), z_q)
    expected = grad.pow(2).sum(1).mean()
    torch.testing.assert_close(disc.metrics["r1_grad_sq"], expected, rtol=1e-10, atol=0)
    plain = _setup(kind="aae", prior="adversarial", beta=0.0, loss="nonsaturating")[1]
    plain.model.load_state_dict(model.state_dict())
    torch.testing.assert_close(disc.loss - _updates(plain, x, seed=5)["discriminator"].loss, 1.5 * expected,
                               rtol=1e-10, atol=0)
    # ...and it changes D's gradient (a penalty that never reached D would not).
    g_pen = torch.cat([g.flatten() for g in _grads(disc.loss, dp)])
    g_plain = torch.cat([g.flatten() for g in _grads(_updates(plain, x, seed=5)["discriminator"].loss,
                                                     plain.model.discriminator_parameters())])
    assert not torch.allclose(g_pen, g_plain, rtol=0, atol=1e-8)


def test_aae_beta_positive_encoder_sees_discriminator():
    model, obj, x = _setup(kind="aae", prior="adversarial", beta=1.0)
    g0 = _encoder_grad(model, obj, x)
    _randomise(model.discriminator, seed=3)
    assert not torch.allclose(g0, _encoder_grad(model, obj, x), rtol=0, atol=1e-12)


def test_prior_phase_updates_only_prior_and_keeps_encoder_fixed():
    model, obj, x = _setup(beta=0.0)
    enc_before = [p.detach().clone() for p in model.autoencoder_parameters()]
    bn_before = [b.clone() for b in model.encoder.buffers()]
    prior_before = [p.detach().clone() for p in model.prior_parameters()]
    set_phase_mode(model, "prior")  # the run's mode for the phase: the frozen encoder in eval mode
    names = list(run_updates(obj, x, phase="prior"))
    assert names == ["prior/loss", "prior/log_pz"]
    assert all(torch.equal(a, b) for a, b in zip(enc_before, model.autoencoder_parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(bn_before, model.encoder.buffers(), strict=True))  # eval-mode BN
    assert any(not torch.equal(a, b) for a, b in zip(prior_before, model.prior_parameters(), strict=True))
