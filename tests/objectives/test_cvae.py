"""The cvae objective: the KL annealing schedule, the closed-form KL, gradient isolation, the saved step count; and
the Variational U-Net baseline of Table 2 as its code defines it: q(z|x,y) = N(mu, I) (model.posterior: unit),
KL = 1/2 ||mu_q - mu_p||^2 to its N(mu(y), I) prior, Adam's betas (0.5, 0.9) in the task files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from latentprior.models.build import build_model
from latentprior.nets.unet import UNetDecoder, UNetEncoder
from latentprior.objectives import build_objective
from latentprior.objectives.cvae import KL_FLOOR, kl_to_prior, kl_weight, vunet_kl
from latentprior.priors.conditional_flow import conditional_flow
from tests.builders import COND_DIM, COND_SIDE, conditional_config, randomised

DIM, SIDE = COND_DIM, COND_SIDE
COND = SIDE * SIDE
TASKS = Path(__file__).resolve().parents[2] / "configs" / "conditional"


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


def _cfg(**model):
    """The downsample7 cvae of the Variational U-Net: a conditional N(mu(y), I) prior, beta = 1."""
    return conditional_config(prior={"kind": "normal"}, model=model)


def test_the_vunet_kl_is_half_the_squared_distance_of_the_means_on_hand_computed_values():
    mean = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, -3.0]])
    loc = torch.tensor([[0.0, 0.5, 0.0], [0.0, -1.0, 1.0]])
    # 1/2 (1 + 1.5^2 + 0) = 1.625 and 1/2 (0 + 1 + 16) = 8.5
    assert vunet_kl(mean, loc, torch.ones(3)).tolist() == [1.625, 8.5]
    # a small difference survives in float32 (the full Gaussian formula's 1 + d^2 - 1 would round it to 0)
    d = torch.tensor([[1e-4, 0.0, 0.0]])
    assert vunet_kl(d, torch.zeros(1, 3), torch.ones(3)).item() == pytest.approx(0.5e-8, rel=1e-6)
    # a non-unit prior scale: the general closed form of KL(N(m, I) || N(l, s^2 I)) against torch's
    s = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)
    want = torch.distributions.kl_divergence(torch.distributions.Normal(mean.double(), 1.0),
                                             torch.distributions.Normal(loc.double(), s)).sum(-1)
    torch.testing.assert_close(vunet_kl(mean.double(), loc.double(), s), want)


def test_kl_to_the_conditional_gaussian_prior_with_a_unit_posterior_is_the_vunet_kl():
    # randomised: the mean's zero initialisation would make mu(y) = 0 for every y
    prior = randomised(conditional_flow(DIM, 0, 8, cond_shape=(1, SIDE, SIDE), embed_dim=4)).double()
    torch.manual_seed(0)
    mean, z = torch.randn(2, 5, DIM, dtype=torch.float64)
    c = torch.rand(5, COND, dtype=torch.float64)
    loc = prior.base.mean(prior.embedding(c))
    want = 0.5 * (mean - loc).pow(2).sum(-1)
    got = kl_to_prior(prior, z, mean, torch.zeros_like(mean), c, unit_posterior=True)
    torch.testing.assert_close(got, want, rtol=1e-14, atol=0)
    assert not torch.allclose(loc, torch.zeros_like(loc))


def test_the_unit_posterior_has_variance_one_and_an_encoder_that_gives_the_mean_alone():
    unit, learned = build_model(_cfg(posterior="unit"), (1, 28, 28)), build_model(_cfg(), (1, 28, 28))
    x = torch.rand(6, 1, 28, 28)
    mean, logvar = unit.encode(x)
    assert unit.encoder(torch.cat((x, unit.condition(x)), 1)).shape == (6, DIM)  # no variance output to learn
    assert learned.encoder(torch.cat((x, learned.condition(x)), 1)).shape == (6, 2 * DIM)  # older runs' shapes
    assert mean.shape == (6, DIM) and torch.equal(logvar, torch.zeros(6, DIM)) and not logvar.requires_grad
    torch.manual_seed(1)
    z = unit.posterior_sample(mean[:1].detach().expand(20000, DIM), logvar[:1].expand(20000, DIM))
    assert (z - mean[:1].detach()).var(0).tolist() == pytest.approx([1.0] * DIM, abs=0.04)


def test_the_objectives_kl_is_the_vunet_kl_of_the_encoder_and_prior_means():
    cfg = _cfg(posterior="unit")
    torch.manual_seed(0)
    model = build_model(cfg, (1, 28, 28))
    with torch.no_grad():
        model.prior.base.mean.bias.normal_()  # mu(y) away from 0
    objective = build_objective(cfg, model)
    x = torch.rand(8, 1, 28, 28)
    model.eval()  # BatchNorm from running statistics: the same means in the update and here
    with torch.no_grad():
        y = model.condition(x)
        mean, _ = model.encode(x, y)
        loc = model.prior.base.mean(model.prior.context(model.context(y)))
        want = 0.5 * (mean - loc).pow(2).sum(-1).mean()
    update = next(objective.updates(x))
    assert update.name == "autoencoder"
    assert update.metrics["kl"].item() == pytest.approx(want.item(), rel=1e-6)
    # a posterior mean 1e-4 from the prior's in every coordinate: KL = DIM/2 1e-8, which the full Gaussian KL of a
    # learned variance loses in float32 (1 + d^2 - 1 = 0)
    with torch.no_grad():
        last = model.encoder.net[-1]  # the Linear that gives the mean
        last.weight.zero_()
        last.bias.fill_(1e-4)
        model.prior.base.mean.bias.zero_()
    assert next(objective.updates(x)).metrics["kl"].item() == pytest.approx(DIM / 2 * 1e-8, rel=1e-4)


@pytest.mark.parametrize("task", sorted(p.name for p in TASKS.glob("*_cpu*.yaml")))
def test_the_task_files_train_the_vunet_baseline_with_its_posterior_and_adam_betas(task):
    from latentprior.studies.translation import load_task

    configs = load_task(TASKS / task).configs
    # the proposed model modifies the VUNet code: the same posterior and optimizer; a *_cvae_* file trains the
    # conditional VAE with a learned variance as its original, with Adam's default betas
    cvae = "_cvae_" in task
    for arm, cfg in configs.items():
        vunet = arm == "proposed" or not cvae
        assert cfg.model.posterior == ("unit" if vunet else "tanh_logvar"), arm
        objective = build_objective(cfg, build_model(cfg, (1, 28, 28)))
        assert set(objective.optimizers) == {"autoencoder", "prior"}
        for opt in objective.optimizers.values():
            assert [g["betas"] for g in opt.param_groups] == [(0.5, 0.9) if vunet else (0.9, 0.999)], arm
    original = configs["original"]
    assert original.prior.kind == "normal" and original.objective.beta == 1.0
    # the KL weight rises from 1e-6 at T/2 to 1 at 3T/4 of the T joint steps (60,000 images a training epoch)
    steps = round(original.train.epochs * 60000 / original.train.batch_size)
    assert (original.objective.kl_anneal_start, original.objective.kl_anneal_end) == pytest.approx(
        (steps / 2, 3 * steps / 4), rel=0.01)
