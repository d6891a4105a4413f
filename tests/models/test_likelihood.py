"""Pixel likelihoods beside the Gaussian: Laplace with its closed-form scale, Bernoulli and continuous
Bernoulli against torch.distributions, the config that chooses them, and that log p(x|z) is read through
the model (objectives, IW-NLL)."""

from __future__ import annotations

import math

import pytest
import torch

from latentprior.config import ConfigError, config_from_dict
from latentprior.evaluation.nll import iw_log_likelihood
from latentprior.models import DecoderVariance, build_model
from latentprior.models.likelihood import BernoulliLikelihood, LaplaceLikelihood, continuous_bernoulli_log_norm
from latentprior.objectives import build_objective, run_updates


def _pair(seed: int = 0, shape=(5, 1, 6, 6)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g, dtype=torch.float64), torch.rand(shape, generator=g, dtype=torch.float64)


def test_laplace_log_density_is_torch_distributions() -> None:
    x, g = _pair()
    lik = LaplaceLikelihood(0.3).double()
    expected = torch.distributions.Laplace(g, lik.b).log_prob(x).flatten(1).sum(-1)
    torch.testing.assert_close(lik.log_density(x, g), expected, rtol=1e-12, atol=1e-12)


def test_laplace_closed_form_scale_is_the_exact_maximiser() -> None:
    """b* = mean |x - g| maximises the batch's log-likelihood: a dense grid of b around it never does better,
    its numerical argmax lands on b*, and the derivative there is zero."""
    x, g = _pair(1)
    best = float((x - g).abs().mean())

    def total(b: torch.Tensor) -> torch.Tensor:  # the batch's log-likelihood at scale b
        return torch.distributions.Laplace(g, b).log_prob(x).sum()

    grid = best * torch.linspace(0.5, 1.5, 2001, dtype=torch.float64)  # steps of 0.05 % of b*
    values = torch.stack([total(b) for b in grid])
    assert float(grid[values.argmax()]) == pytest.approx(best, rel=1e-3)
    assert float(values.max()) <= float(total(torch.tensor(best, dtype=torch.float64))) + 1e-9
    b = torch.tensor(best, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(total(b), b)
    assert abs(float(grad)) < 1e-6 * x.numel() / best
    # the learned ("optimal") likelihood uses exactly b* in training mode, and keeps a running value for eval
    lik = LaplaceLikelihood(1.0, learned=True, update="optimal").double().train()
    assert not list(lik.parameters())
    torch.testing.assert_close(lik.log_density(x, g).sum(), total(torch.tensor(best, dtype=torch.float64)),
                               rtol=1e-12, atol=0)
    assert float(lik.b) == pytest.approx(0.9 + 0.1 * best, rel=1e-12)
    lik.eval()
    torch.testing.assert_close(lik.log_density(x, g).sum(), total(lik.b), rtol=1e-12, atol=0)


def test_laplace_gradient_scale_is_a_parameter_and_fixed_is_a_buffer() -> None:
    assert [n for n, _ in LaplaceLikelihood(0.5, learned=True, update="gradient").named_parameters()] == ["log_b"]
    fixed = LaplaceLikelihood(0.5)
    assert not list(fixed.parameters()) and "log_b" in dict(fixed.named_buffers())


def test_bernoulli_log_density_is_torch_distributions_on_binary_data() -> None:
    x, g = _pair(2)
    x = (x > 0.5).double()
    g[0, 0, 0, :2] = torch.tensor([0.0, 1.0])  # saturated probabilities: clamped, finite, as torch clamps them
    expected = torch.distributions.Bernoulli(probs=g).log_prob(x).flatten(1).sum(-1)
    got = BernoulliLikelihood().log_density(x, g)
    assert torch.all(torch.isfinite(got))
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def test_continuous_bernoulli_is_torch_distributions_and_normalised() -> None:
    x, g = _pair(3)
    g[0, 0, 0, :3] = torch.tensor([0.5, 0.5 + 1e-4, 0.4999])  # the 0/0 point and its neighbourhood
    expected = torch.distributions.ContinuousBernoulli(probs=g).log_prob(x).flatten(1).sum(-1)
    torch.testing.assert_close(BernoulliLikelihood(continuous=True).log_density(x, g), expected, rtol=1e-9, atol=1e-9)
    # per pixel, exp(log p) integrates to 1 over x in [0, 1]; the plain Bernoulli's cross-entropy does not
    lam = torch.tensor([0.03, 0.3, 0.5, 0.5 + 5e-3, 0.8, 0.99], dtype=torch.float64).view(1, 6, 1, 1)
    xs = (torch.arange(20000, dtype=torch.float64) + 0.5) / 20000  # midpoints of [0, 1]
    xs = xs.view(-1, 1, 1, 1).expand(-1, 6, 1, 1)
    ll = xs * lam.log() + (1 - xs) * (-lam).log1p()
    cb = (ll + continuous_bernoulli_log_norm(lam)).exp().mean(0).flatten()
    torch.testing.assert_close(cb, torch.ones(6, dtype=torch.float64), rtol=0, atol=1e-6)
    assert torch.all(ll.exp().mean(0).flatten() < 0.99)


def test_continuous_bernoulli_norm_is_smooth_through_one_half() -> None:
    lam = torch.tensor([0.5 - 1.1e-2, 0.5 - 0.9e-2, 0.5, 0.5 + 0.9e-2, 0.5 + 1.1e-2], dtype=torch.float64)
    t = 1 - 2 * lam
    exact = torch.where(t == 0, torch.tensor(math.log(2.0), dtype=torch.float64),
                        torch.log(2 * torch.atanh(t) / torch.where(t == 0, torch.ones_like(t), t)))
    torch.testing.assert_close(continuous_bernoulli_log_norm(lam), exact, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- the config and the model


def _cfg(likelihood: str, **model):
    return config_from_dict({"data": {"name": "digits"}, "net": {"width": 0.0625},
                             "prior": {"kind": "normal"}, "model": {"latent_dim": 4, "likelihood": likelihood, **model},
                             "objective": {"kind": "vae", "beta": 1.0}})


@pytest.mark.parametrize(("likelihood", "cls"), [("gaussian", DecoderVariance), ("laplace", LaplaceLikelihood),
                                                 ("bernoulli", BernoulliLikelihood),
                                                 ("continuous_bernoulli", BernoulliLikelihood)])
def test_config_chooses_the_likelihood_and_the_model_reads_it(likelihood: str, cls: type) -> None:
    torch.manual_seed(0)
    model = build_model(_cfg(likelihood), (1, 28, 28)).double()
    assert type(model.variance) is cls
    x, g = _pair(4, (3, 1, 28, 28))
    torch.testing.assert_close(model.log_px_given_z(x, g), model.variance.log_density(x, g))
    if likelihood == "continuous_bernoulli":
        assert model.variance.continuous


def test_an_old_config_keeps_the_gaussian_and_its_state_dict() -> None:
    cfg = config_from_dict({"data": {"name": "digits"}, "net": {"width": 0.0625}, "model": {"latent_dim": 4},
                            "prior": {"kind": "normal"}})
    assert cfg.model.likelihood == "gaussian"
    model = build_model(cfg, (1, 28, 28))
    assert type(model.variance) is DecoderVariance and "variance.log_gamma" in model.state_dict()


def test_laplace_scale_learns_with_the_autoencoder_when_asked() -> None:
    torch.manual_seed(0)
    model = build_model(_cfg("laplace", learn_gamma=True, gamma_update="gradient", gamma=0.2), (1, 28, 28))
    assert any(p is model.variance.log_b for p in model.autoencoder_parameters())
    assert float(model.variance.b.detach()) == pytest.approx(0.2)


@pytest.mark.parametrize(("model", "net", "match"), [
    ({"likelihood": "bernoulli", "learn_gamma": True}, {}, "'bernoulli' has none"),
    ({"likelihood": "continuous_bernoulli", "gamma": 0.5}, {}, "has none"),
    ({"likelihood": "laplace", "reconstruction": "perceptual"}, {}, "leaves out"),
    ({"likelihood": "bernoulli"}, {"output": "linear"}, "set net.output 'sigmoid'"),
    ({"likelihood": "poisson"}, {}, "model.likelihood: 'poisson' is not valid"),
])
def test_likelihood_config_rules(model: dict, net: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        config_from_dict({"net": {"width": 0.0625, **net}, "model": model})


@pytest.mark.parametrize("likelihood", ["laplace", "bernoulli"])
def test_iw_nll_reads_the_models_likelihood(likelihood: str) -> None:
    """k = 1: the estimate is log p(x|z) + log p(z) - log q(z|x) at the one draw, with p(x|z) the model's
    Laplace or Bernoulli likelihood, rebuilt here from the same noise."""
    torch.manual_seed(0)
    model = build_model(_cfg(likelihood), (1, 28, 28)).double().eval()
    x = (torch.rand(3, 1, 28, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) > 0.5).double()
    got = iw_log_likelihood(model, x, k=1, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        mean, logvar = model.encode(x)
        eps = torch.randn(1, 3, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)[0]
        z = mean + torch.exp(0.5 * logvar) * eps
        g = model.decode(z)
        px = (LaplaceLikelihood(1.0) if likelihood == "laplace" else BernoulliLikelihood()).double().log_density(x, g)
        q = torch.distributions.Normal(mean, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
        expected = px + model.prior.log_prob(z) - q
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("likelihood", ["laplace", "bernoulli"])
def test_objective_logs_the_scale_only_where_there_is_one(likelihood: str) -> None:
    torch.manual_seed(0)
    cfg = _cfg(likelihood, learn_gamma=likelihood == "laplace")
    model = build_model(cfg, (1, 28, 28))
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    metrics = run_updates(build_objective(cfg, model), x)
    assert ("autoencoder/gamma" in metrics) == (likelihood == "laplace")
    if likelihood == "laplace":  # the closed form moved the running b toward the batch's mean absolute error
        assert float(metrics["autoencoder/gamma"]) < 1.0


@pytest.mark.slow
@pytest.mark.parametrize("model", [{"likelihood": "laplace", "learn_gamma": True}, {"likelihood": "bernoulli"}],
                         ids=["laplace", "bernoulli"])
def test_run_with_the_likelihood_resumes_exactly(model: dict, tmp_path) -> None:
    from latentprior.models.load import load_run
    from latentprior.rundir import read_metrics
    from latentprior.training import train

    cfg = config_from_dict({
        "data": {"name": "digits"}, "net": {"width": 0.0625}, "prior": {"kind": "realnvp", "layers": 2, "hidden": 16},
        "model": {"latent_dim": 4, **model}, "objective": {"kind": "vae", "beta": 1.0, "lr": 1e-3},
        "train": {"epochs": 0.4, "prior_epochs": 0.2, "batch_size": 100, "log_every": 1, "checkpoint_every": 2,
                  "progress": False},
    })
    train(cfg, tmp_path / "full")
    train(cfg, tmp_path / "split", max_steps=5)
    train(cfg, tmp_path / "split")
    a, b = read_metrics(tmp_path / "full"), read_metrics(tmp_path / "split")
    def values(records):  # every logged value but the speed (images_per_s), which differs between sessions
        return [[(k, v) for k, v in r.items() if not k.endswith("_s")] for r in records]

    assert len(a) == len(b) == 9 and values(a) == values(b)
    assert ("autoencoder/gamma" in a[0]) == (model["likelihood"] == "laplace")
    ma, _ = load_run(tmp_path / "full")
    mb, _ = load_run(tmp_path / "split")
    for (k, va), vb in zip(ma.state_dict().items(), mb.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
