"""The Variational U-Net baseline of Table 2 as its code defines it: q(z|x,y) = N(mu, I) (model.posterior: unit),
KL = 1/2 ||mu_q - mu_p||^2 to its N(mu(y), I) prior, Adam's betas (0.5, 0.9) in the task files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from latentprior.config import config_from_dict
from latentprior.models.build import build_model
from latentprior.objectives import build_objective
from latentprior.objectives.cvae import kl_to_prior, vunet_kl
from latentprior.priors.conditional_flow import conditional_flow

TASKS = Path(__file__).resolve().parents[2] / "configs" / "conditional"
D = 3


def _cfg(**model):
    return config_from_dict({"data": {"name": "digits", "condition": "downsample7"},
                             "net": {"arch": "unet", "width": 0.125}, "prior": {"kind": "normal", "cond_embed": 8},
                             "model": {"latent_dim": D} | model, "objective": {"kind": "cvae", "beta": 1.0}})


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
    torch.manual_seed(0)
    prior = conditional_flow(D, 0, 8, cond_shape=(1, 8, 8), embed_dim=4).double()
    with torch.no_grad():
        for p in prior.parameters():  # the mean's zero initialisation would make mu(y) = 0 for every y
            p.normal_(0, 0.3)
    mean, z = torch.randn(2, 5, D, dtype=torch.float64)
    c = torch.rand(5, 64, dtype=torch.float64)
    loc = prior.base.mean(prior.embedding(c))
    want = 0.5 * (mean - loc).pow(2).sum(-1)
    got = kl_to_prior(prior, z, mean, torch.zeros_like(mean), c, unit_posterior=True)
    torch.testing.assert_close(got, want, rtol=1e-14, atol=0)
    assert not torch.allclose(loc, torch.zeros_like(loc))


def test_the_unit_posterior_has_variance_one_and_an_encoder_that_gives_the_mean_alone():
    unit, learned = build_model(_cfg(posterior="unit"), (1, 28, 28)), build_model(_cfg(), (1, 28, 28))
    x = torch.rand(6, 1, 28, 28)
    mean, logvar = unit.encode(x)
    assert unit.encoder(torch.cat((x, unit.condition(x)), 1)).shape == (6, D)  # no variance output to learn
    assert learned.encoder(torch.cat((x, learned.condition(x)), 1)).shape == (6, 2 * D)  # older runs' shapes
    assert mean.shape == (6, D) and torch.equal(logvar, torch.zeros(6, D)) and not logvar.requires_grad
    torch.manual_seed(1)
    z = unit.posterior_sample(mean[:1].detach().expand(20000, D), logvar[:1].expand(20000, D))
    assert (z - mean[:1].detach()).var(0).tolist() == pytest.approx([1.0] * D, abs=0.04)


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
    # a posterior mean 1e-4 from the prior's in every coordinate: KL = D/2 1e-8, which the full Gaussian KL of a
    # learned variance loses in float32 (1 + d^2 - 1 = 0)
    with torch.no_grad():
        last = model.encoder.net[-1]  # the Linear that gives the mean
        last.weight.zero_()
        last.bias.fill_(1e-4)
        model.prior.base.mean.bias.zero_()
    assert next(objective.updates(x)).metrics["kl"].item() == pytest.approx(D / 2 * 1e-8, rel=1e-4)


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
