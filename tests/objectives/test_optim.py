"""One place builds optimizers (objectives/optim.py): every group of every objective, FactorVAE's TC
discriminator and the conditional objective's included, gets its Adam from ``build_optimizer`` with the run's
implementation; fused and loop Adam compute the same update."""

from __future__ import annotations

import pytest
import torch

import latentprior.objectives.base as base
from latentprior.config import config_from_dict
from latentprior.models import build_model
from latentprior.objectives import AdamImpl, StepOptions, build_objective, build_optimizer

KINDS = {
    "vae": {"prior": {"kind": "realnvp", "layers": 2, "hidden": 16}, "objective": {"kind": "vae", "lr": 1e-3}},
    "aae": {"prior": {"kind": "adversarial", "layers": 1, "hidden": 16, "disc_layers": 1, "disc_hidden": 16},
            "objective": {"kind": "aae", "lr": 1e-3, "disc_lr": 2e-4}},
    "factorvae": {"prior": {"kind": "normal", "disc_layers": 1, "disc_hidden": 16},
                  "objective": {"kind": "factorvae", "beta": 1.0, "disc_lr": 5e-4, "adam_beta1": 0.5}},
    "cvae": {"data": {"name": "mnist", "condition": "downsample7"}, "net": {"arch": "unet", "width": 0.125},
             "prior": {"kind": "realnvp", "layers": 2, "hidden": 16, "cond_embed": 8},
             "objective": {"kind": "cvae", "beta": 0.0, "prior_lr": 3e-4}},
}
GROUPS = {"vae": ["autoencoder", "prior"], "aae": ["autoencoder", "prior", "discriminator"],
          "factorvae": ["autoencoder", "tc_discriminator"], "cvae": ["autoencoder", "prior"]}


def _model_and_cfg(kind: str):
    sections = {"data": {"name": "digits"}, "net": {"width": 0.0625}, "model": {"latent_dim": 4}, **KINDS[kind]}
    cfg = config_from_dict(sections)
    torch.manual_seed(0)
    return build_model(cfg, (1, 28, 28)), cfg


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_group_gets_its_adam_from_build_optimizer_with_the_runs_impl(kind, monkeypatch):
    built = []

    def recording(params, lr, betas, impl):
        built.append((len(params), lr, betas, impl))
        return build_optimizer(params, lr, betas, impl)

    monkeypatch.setattr(base, "build_optimizer", recording)
    model, cfg = _model_and_cfg(kind)
    fused = AdamImpl(fused=True)
    opts = StepOptions(autocast=torch.bfloat16)
    objective = build_objective(cfg, model, adam_impl=fused, step_options=opts)
    assert list(objective.optimizers) == GROUPS[kind] and objective.step_options is opts
    # every optimizer the objective steps came out of build_optimizer with the run's flags
    last = {n: b for n, b in zip(GROUPS[kind], built[-len(GROUPS[kind]):], strict=True)}
    assert all(b[3] == fused for b in last.values())
    for name, opt in objective.optimizers.items():
        (pg,) = opt.param_groups
        assert pg["fused"] is True and pg["foreach"] is False and pg["capturable"] is False, name
        assert pg["params"] == objective.groups[name]
    o = cfg.objective
    want_lr = {"autoencoder": o.lr, "prior": o.prior_lr or o.lr, "discriminator": o.disc_lr or o.lr,
               "tc_discriminator": o.disc_lr or o.lr}
    for name in GROUPS[kind]:
        assert last[name][1] == want_lr[name] and last[name][2] == (o.adam_beta1, o.adam_beta2), name
    objective.set_lr_scale(0.5)  # the schedule reaches every group, FactorVAE's discriminator too
    assert all(opt.param_groups[0]["lr"] == 0.5 * want_lr[k] for k, opt in objective.optimizers.items())


def test_an_objective_built_without_options_runs_the_loop_in_fp32():
    model, cfg = _model_and_cfg("factorvae")
    objective = build_objective(cfg, model)
    assert objective.adam_impl == AdamImpl() and objective.step_options.autocast is None
    for opt in objective.optimizers.values():
        assert not opt.param_groups[0]["fused"] and not opt.param_groups[0]["foreach"]


@pytest.mark.parametrize("impl", [AdamImpl(fused=True), AdamImpl(foreach=True)])
def test_fused_and_foreach_adam_compute_the_loops_update(impl):
    torch.manual_seed(0)
    params = [torch.randn(s, dtype=torch.float64, requires_grad=True) for s in ((7, 5), (5,), (3, 2, 2))]
    twins = [p.detach().clone().requires_grad_() for p in params]
    start = [p.detach().clone() for p in params]
    loop, other = build_optimizer(params, 1e-2, (0.5, 0.9)), build_optimizer(twins, 1e-2, (0.5, 0.9), impl)
    for step in range(4):
        for ps, opt in ((params, loop), (twins, other)):
            opt.zero_grad()
            sum((p.sin() * (step + 1)).sum() for p in ps).backward()
            opt.step()
    for a, b, a0 in zip(params, twins, start, strict=True):
        assert (a - a0).abs().max() > 1e-3  # they moved
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)


def test_foreach_and_fused_exclude_each_other():
    with pytest.raises(ValueError, match="foreach and fused"):
        AdamImpl(foreach=True, fused=True)
