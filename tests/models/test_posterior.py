"""How a Gaussian encoder's output becomes q(z|x)'s variance: the soft-bounded log-variance (the default) and
Dai & Wipf's sigma = 1e-6 + softplus(h) (model.posterior: softplus_std, the infogan paper configs)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from latentprior.config import ConfigError, config_from_dict
from latentprior.models import LatentAutoencoder
from latentprior.models.build import build_model
from latentprior.priors import StandardNormal

H = torch.tensor([[-60.0, -20.0, -3.0, -0.5, 0.0, 0.7, 4.0, 25.0, 80.0]], dtype=torch.float64)


def _model(posterior: str | None) -> LatentAutoencoder:
    d = H.shape[1]
    kw = {} if posterior is None else {"posterior": posterior}
    return LatentAutoencoder(nn.Identity(), nn.Identity(), StandardNormal(d), latent_dim=d, **kw)


def _softplus(h: float) -> float:
    return math.log1p(math.exp(h)) if h < 30 else h + math.log1p(math.exp(-h))


def test_the_softplus_parametrisation_gives_log_sigma2_of_dai_and_wipf():
    x = torch.cat([torch.zeros_like(H), H], 1)  # the encoder (identity) outputs [mean, h]
    mean, logvar = _model("softplus_std").encode(x)
    want = torch.tensor([[2 * math.log(1e-6 + _softplus(h)) for h in H[0].tolist()]], dtype=torch.float64)
    torch.testing.assert_close(logvar, want, rtol=1e-12, atol=1e-12)
    assert torch.equal(mean, torch.zeros_like(H))
    # the reparameterised draw uses sigma = 1e-6 + softplus(h) itself
    torch.testing.assert_close(torch.exp(0.5 * logvar), 1e-6 + torch.nn.functional.softplus(H), rtol=1e-12, atol=0)
    assert logvar.min() == pytest.approx(2 * math.log(1e-6), rel=1e-6)  # the floor: sigma > 1e-6 for every h


def test_the_default_keeps_the_soft_bounded_log_variance():
    x = torch.cat([torch.zeros_like(H), H], 1)
    for model in (_model(None), _model("tanh_logvar")):
        torch.testing.assert_close(model.encode(x)[1], 10 * torch.tanh(H / 10), rtol=0, atol=0)
    with pytest.raises(ValueError, match="unknown posterior"):
        _model("exp")


def test_the_config_chooses_the_parametrisation_and_refuses_it_without_a_variance():
    base = {"data": {"name": "mnist"}, "net": {"width": 0.125}, "prior": {"kind": "normal"}, "model": {"latent_dim": 4}}
    assert build_model(config_from_dict(base), (1, 28, 28)).posterior == "tanh_logvar"  # older runs' config.yaml
    cfg = config_from_dict(base | {"model": {"latent_dim": 4, "posterior": "softplus_std"}})
    assert build_model(cfg, (1, 28, 28)).posterior == "softplus_std"
    with pytest.raises(ConfigError, match="^model.posterior 'softplus_std' parametrises a Gaussian encoder"):
        config_from_dict(base | {"model": {"latent_dim": 4, "posterior": "softplus_std", "encoder": "deterministic"},
                                 "objective": {"kind": "aae"}})


def test_the_infogan_paper_configs_and_sweeps_use_dai_and_wipfs_numerics():
    """sigma = 1e-6 + softplus(h) wherever the infogan net is; BatchNorm momentum 0.001 at the paper's schedules
    (>= 200 epochs at lr 1e-4), PyTorch's 0.1 in the CPU sweeps (<= 10 epochs at lr 1e-3), where running statistics
    that slow still hold their initial values or lag the net (the sweep files give the measurements)."""
    from pathlib import Path

    from latentprior.config import load_config
    from latentprior.sweeps.grid import expand, load_sweep

    root = Path(__file__).resolve().parents[2] / "configs"
    papers = [load_config(p) for p in sorted(root.glob("*.yaml"))]
    assert sum(c.net.arch == "infogan" for c in papers) == 10
    for cfg in papers:
        want = ("softplus_std", 0.001) if cfg.net.arch == "infogan" else ("tanh_logvar", 0.1)
        assert (cfg.model.posterior, cfg.net.bn_momentum) == want
    runs = [t.cfg for p in sorted((root / "sweeps").glob("*.yaml")) for t in expand(load_sweep(p))]
    infogan = [c for c in runs if c.net.arch == "infogan"]
    assert len(infogan) > 100 and all(c.model.posterior == "softplus_std" for c in infogan)
    for cfg in infogan:
        paper = cfg.train.epochs >= 200 and cfg.objective.lr == 1e-4
        assert paper or (cfg.train.epochs <= 10 and cfg.objective.lr == 1e-3)
        assert cfg.net.bn_momentum == (0.001 if paper else 0.1), (cfg.data.name, cfg.train.epochs)
    assert {c.net.bn_momentum for c in infogan} == {0.001, 0.1}
