"""FactorVAE's TC discriminator and its optimizer as Kim & Mnih specify them, in every shipped FactorVAE config;
an old FactorVAE config.yaml (written before these settings existed) still rebuilds the network it trained."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from latentprior.config import ConfigError, config_from_dict
from latentprior.data.dataset import ImageDataset
from latentprior.studies.disentanglement import load_study
from latentprior.training.run import open_run

ROOT = Path(__file__).resolve().parents[2]
STUDIES = sorted((ROOT / "configs" / "disentanglement").glob("*.yaml"))


def _run(cfg):
    cfg = cfg.replace(**{"train.device": "cpu", "train.progress": False, "train.batch_size": 4})
    images = torch.randint(0, 256, (8, *((3, 64, 64) if cfg.data.name == "celeba" else (1, 28, 28))),
                           dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return open_run(cfg, None, data=ImageDataset(images))  # as training builds it: optimizers via configure


def _layers(disc: nn.Module) -> list[nn.Module]:
    return list(disc.net)


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_the_factorvae_of_every_study_has_kim_and_mnihs_discriminator_and_optimizer(path):
    cfg = load_study(path).configs["factorvae"]
    run = _run(cfg.replace(**{"net.width": 0.125, "model.latent_dim": 10}))
    layers = _layers(run.model.tc_discriminator)
    linears = [m for m in layers if isinstance(m, nn.Linear)]
    # 6 hidden layers of 1000 units, each followed by LeakyReLU(0.2), then one logit
    assert [(m.in_features, m.out_features) for m in linears] == [(10, 1000)] + [(1000, 1000)] * 5 + [(1000, 1)]
    acts = layers[1::2]
    assert len(acts) == 6 and all(type(a) is nn.LeakyReLU and a.negative_slope == 0.2 for a in acts)
    assert [type(m) for m in layers[0::2]] == [nn.Linear] * 7
    opt = run.objective.optimizers["tc_discriminator"]
    (group,) = opt.param_groups
    assert group["lr"] == 1e-4 and group["betas"] == (0.5, 0.9)
    assert {id(p) for p in group["params"]} == {id(p) for p in run.model.tc_discriminator.parameters()}
    # the autoencoder keeps its own Adam settings
    (ae,) = run.objective.optimizers["autoencoder"].param_groups
    assert ae["lr"] == cfg.objective.lr and ae["betas"] == (0.9, 0.999)


def test_an_old_factorvae_config_rebuilds_the_network_and_optimizer_it_trained():
    old = {"data": {"name": "mnist"}, "net": {"width": 0.125},
           "prior": {"kind": "normal", "layers": 24, "hidden": 1024, "noise_dim": None, "disc_layers": 2,
                     "disc_hidden": 1024, "cond_embed": 64},
           "model": {"latent_dim": 8},
           "objective": {"kind": "factorvae", "beta": 1.0, "tc_weight": 40.0, "lr": 1e-3, "prior_lr": None,
                         "disc_lr": None, "adam_beta1": 0.9, "adam_beta2": 0.999}}
    run = _run(config_from_dict(old))
    layers = _layers(run.model.tc_discriminator)
    assert [type(m) for m in layers] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    assert [m.out_features for m in layers[0::2]] == [1024, 1024, 1]
    (group,) = run.objective.optimizers["tc_discriminator"].param_groups
    assert group["lr"] == 1e-3 and group["betas"] == (0.9, 0.999)


def test_the_discriminators_adam_settings_reach_the_aae_discriminator_too():
    cfg = config_from_dict({"data": {"name": "mnist"}, "net": {"width": 0.125},
                            "prior": {"kind": "adversarial", "layers": 1, "hidden": 16, "disc_layers": 1,
                                      "disc_hidden": 16, "disc_activation": "leaky_relu"},
                            "model": {"latent_dim": 4},
                            "objective": {"kind": "aae", "disc_lr": 2e-4, "disc_adam_beta1": 0.5}})
    run = _run(cfg)
    assert type(run.model.discriminator.net[1]) is nn.LeakyReLU
    betas = {k: o.param_groups[0]["betas"] for k, o in run.objective.optimizers.items()}
    assert betas == {"autoencoder": (0.9, 0.999), "prior": (0.9, 0.999), "discriminator": (0.5, 0.999)}


@pytest.mark.parametrize(("sections", "message"), [
    ({"prior": {"kind": "normal", "disc_activation": "leaky_relu"}, "objective": {"kind": "vae"}},
     r"^prior.disc_activation only applies to objective.kind 'aae' or 'factorvae'"),
    ({"prior": {"kind": "normal"}, "objective": {"kind": "vae", "disc_adam_beta1": 0.5}},
     r"^objective.disc_adam_beta1/2 only apply to objective.kind 'aae' or 'factorvae'"),
    ({"prior": {"kind": "normal"}, "objective": {"kind": "factorvae", "disc_adam_beta2": 1.0}},
     r"^objective.disc_adam_beta1/2 must be in \[0, 1\)"),
    ({"prior": {"kind": "normal", "disc_activation": "tanh"}, "objective": {"kind": "factorvae"}},
     r"^prior.disc_activation: 'tanh' is not valid"),
])
def test_discriminator_settings_are_refused_where_no_discriminator_reads_them(sections, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(sections)
