"""The VampPrior inside a model: the bilevel boundaries (the prior's update moves its pseudo-inputs only and
never reaches the encoder), the encoder evaluated as a fixed function, and what beta > 0 means for it."""

from __future__ import annotations

import math

import pytest
import torch

from latentprior.config import ConfigError, config_from_dict
from latentprior.models import build_model
from latentprior.objectives import build_objective, run_updates
from latentprior.priors import EncoderNotBound, VampPrior
from latentprior.training.run import set_phase_mode

K = 5


def _cfg(beta: float = 0.0, arch: str = "conv4", **prior):
    return config_from_dict({
        "data": {"name": "digits"},
        "net": {"arch": arch, "width": 0.0625},
        "prior": {"kind": "vamp", "components": K, **prior},
        "model": {"latent_dim": 4},
        "objective": {"kind": "vae", "beta": beta},
    })


def _setup(beta: float = 0.0, arch: str = "conv4"):
    torch.manual_seed(0)
    cfg = _cfg(beta, arch)
    model = build_model(cfg, (1, 28, 28)).double()
    obj = build_objective(cfg, model)
    x = torch.rand(6, 1, 28, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    return model, obj, x


def _updates(obj, x, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    return {u.name: u for u in obj.updates(x)}


def _grads(loss, params):
    return torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)


def test_the_prior_owns_its_pseudo_inputs_and_nothing_else() -> None:
    model, _, _ = _setup()
    prior = model.prior
    assert isinstance(prior, VampPrior)
    assert [n for n, _ in prior.named_parameters()] == ["pseudo_logits"]
    assert list(prior.state_dict()) == ["pseudo_logits"]
    assert list(prior.children()) == []  # the encoder is not a submodule
    assert model.prior_parameters() == [prior.pseudo_logits]
    assert prior.pseudo_logits.shape == (K, 1, 28, 28)
    # the model's own parameter groups do not overlap
    enc = {id(p) for p in model.autoencoder_parameters()}
    assert not enc & {id(p) for p in model.prior_parameters()}


@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_prior_update_reaches_the_pseudo_inputs_and_never_the_encoder(beta: float) -> None:
    model, obj, x = _setup(beta)
    ups = _updates(obj, x)
    assert list(ups) == ["autoencoder", "prior"]
    # the prior loss's graph stops at φ: no gradient at all, not merely one left unused
    assert all(g is None for g in _grads(ups["prior"].loss, model.autoencoder_parameters()))
    (g_pseudo,) = _grads(ups["prior"].loss, model.prior_parameters())
    assert g_pseudo is not None and g_pseudo.abs().sum() > 0


def test_prior_update_leaves_the_encoder_and_its_statistics_unchanged() -> None:
    """A whole step of the prior-only phase, and a joint step's prior update: the encoder's parameters and
    BatchNorm running statistics are what they were, the pseudo-inputs moved."""
    model, obj, x = _setup()
    for phase in ("prior", "joint"):
        set_phase_mode(model, phase)
        enc = [t.detach().clone() for t in (*model.encoder.parameters(), *model.encoder.buffers())]
        pseudo = model.prior.pseudo_logits.detach().clone()
        if phase == "prior":
            run_updates(obj, x, phase="prior")
            after = [*model.encoder.parameters(), *model.encoder.buffers()]
            assert all(torch.equal(a, b) for a, b in zip(enc, after, strict=True))
        else:
            # the prior's loss alone: evaluating it (train mode) must not touch BN statistics either
            model.train()
            loss = -model.prior.log_prob(torch.randn(8, 4, dtype=torch.float64)).mean()
            loss.backward(inputs=model.prior_parameters())
            obj.optimizers["prior"].step()
            after = [*model.encoder.parameters(), *model.encoder.buffers()]
            assert all(torch.equal(a, b) for a, b in zip(enc, after, strict=True))
            assert all(p.grad is None for p in model.encoder.parameters())
            assert model.encoder.training  # the mode is restored after the pseudo-inputs' pass
        assert not torch.equal(model.prior.pseudo_logits, pseudo)


def test_at_beta_zero_the_encoder_never_sees_the_pseudo_inputs() -> None:
    model, obj, x = _setup(beta=0.0)

    def encoder_grad():
        loss = _updates(obj, x)["autoencoder"].loss
        return torch.cat([g.flatten() for g in _grads(loss, list(model.encoder.parameters()))])

    g0 = encoder_grad()
    with torch.no_grad():
        model.prior.pseudo_logits.add_(1.0)
    assert torch.equal(g0, encoder_grad())


def test_at_beta_positive_the_prior_pulls_the_codes_but_not_through_its_components() -> None:
    """β > 0: the encoder's gradient depends on the pseudo-inputs (through log p(z) at its codes z), yet the
    F loss's graph into the prior's components is cut: F's gradient equals the one with the prior's component
    parameters (means, log-variances) held as constants."""
    model, obj, x = _setup(beta=1.0)
    enc = list(model.encoder.parameters())

    def encoder_grad():
        loss = _updates(obj, x)["autoencoder"].loss
        return torch.cat([g.flatten() for g in _grads(loss, enc)])

    g0 = encoder_grad()
    with torch.no_grad():
        model.prior.pseudo_logits.add_(1.0)
    g1 = encoder_grad()
    assert not torch.allclose(g0, g1, rtol=0, atol=1e-12)
    # the same gradient with the components frozen by hand: the prior enters F through z only
    mean_k, logvar_k = (t.detach() for t in model.prior.components_params())
    model.prior.components_params = lambda: (mean_k, logvar_k)
    torch.testing.assert_close(encoder_grad(), g1, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("arch", ["conv4", "infogan"])  # infogan: spectrally normalised, BatchNorm1d
def test_encode_detached_is_encode_in_eval_mode_with_the_parameters_cut(arch: str) -> None:
    model, _, x = _setup(arch=arch)
    model.train()
    state = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    xg = x.clone().requires_grad_(True)
    mean, logvar = model.encode_detached(xg)
    assert model.encoder.training
    for k, v in model.encoder.state_dict().items():  # no BN statistics, no spectral-norm vectors updated
        assert torch.equal(v, state[k]), k
    model.eval()
    with torch.no_grad():
        ref_mean, ref_logvar = model.encode(x)
    torch.testing.assert_close(mean, ref_mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(logvar, ref_logvar, rtol=1e-12, atol=1e-12)
    grads = torch.autograd.grad((mean.sum() + logvar.sum()), [xg, *model.encoder.parameters()], allow_unused=True)
    assert grads[0] is not None and grads[0].abs().sum() > 0
    assert all(g is None for g in grads[1:])


def test_log_prob_is_the_uniform_mixture_of_the_pseudo_posteriors() -> None:
    model, _, _ = _setup()
    prior = model.prior
    z = torch.randn(7, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        mean, logvar = model.encode_detached(prior.pseudo_inputs())
        comps = torch.distributions.Independent(torch.distributions.Normal(mean, torch.exp(0.5 * logvar)), 1)
        expected = torch.logsumexp(comps.log_prob(z[:, None, :]), dim=1) - math.log(K)
        torch.testing.assert_close(prior.log_prob(z), expected, rtol=1e-12, atol=1e-12)
    assert torch.all((prior.pseudo_inputs() > 0) & (prior.pseudo_inputs() < 1))


def test_reloaded_model_gives_the_same_log_prob() -> None:
    model, _, _ = _setup()
    with torch.no_grad():
        model.prior.pseudo_logits.add_(torch.randn_like(model.prior.pseudo_logits))
    torch.manual_seed(9)
    other = build_model(_cfg(), (1, 28, 28)).double()
    z = torch.randn(5, 4, dtype=torch.float64)
    model.eval(), other.eval()
    assert not torch.allclose(other.prior.log_prob(z), model.prior.log_prob(z))
    other.load_state_dict(model.state_dict())
    assert torch.equal(other.prior.log_prob(z), model.prior.log_prob(z))
    assert other.prior._encode.__self__ is other  # bound to its own model's encoder, not the first one's


def test_pseudo_inputs_can_start_from_images() -> None:
    prior = VampPrior(2, (1, 3, 3), 4)
    images = torch.rand(4, 1, 3, 3, generator=torch.Generator().manual_seed(0))
    images[0, 0, 0] = torch.tensor([0.0, 1.0, 0.5])
    prior.init_pseudo_inputs(images)
    torch.testing.assert_close(prior.pseudo_inputs(), images.clamp(1e-4, 1 - 1e-4), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"expected \(4, 1, 3, 3\) images"):
        prior.init_pseudo_inputs(images[:2])


def test_unbound_prior_and_config_rules() -> None:
    with pytest.raises(EncoderNotBound, match="bind_encoder"):
        VampPrior(2, (1, 4, 4), 3).log_prob(torch.zeros(1, 2))
    with pytest.raises(ConfigError, match="prior.components only applies to prior.kind 'gmm' or 'vamp'"):
        config_from_dict({"prior": {"kind": "realnvp", "components": 3}})
    with pytest.raises(ConfigError, match="prior.covariance only applies to prior.kind 'gmm'"):
        _cfg(covariance="full")
    with pytest.raises(ConfigError, match="prior.components must be >= 1"):
        _cfg(components=0)
