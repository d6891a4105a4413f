"""Learned decoder variance γ: the closed-form update uses the batch's per-pixel MSE from the first step, and in
training on a fixed batch the logged γ follows the MSE, where gradient learning at the same lr has barely moved."""

from __future__ import annotations

import math

import pytest
import torch

from latentprior.config import config_from_dict
from latentprior.data import load_dataset
from latentprior.models import DecoderVariance, build_model
from latentprior.objectives import build_objective, run_updates


def test_optimal_gamma_is_the_batch_mse_and_eval_uses_the_running_value():
    g = torch.Generator().manual_seed(0)
    x, mean = torch.rand(5, 1, 28, 28, generator=g, dtype=torch.float64), torch.rand(5, 1, 28, 28, generator=g,
                                                                                      dtype=torch.float64)
    v = DecoderVariance(1.0, learned=True, update="optimal").double().train()
    assert not list(v.parameters())  # nothing for an optimizer to move
    d, sq = 784, (x - mean).pow(2).flatten(1).sum(-1)
    best = sq.mean() / d
    lp = v.log_density(x, mean)
    torch.testing.assert_close(lp, -0.5 * (d * (math.log(2 * math.pi) + best.log()) + sq / best), rtol=1e-12, atol=0)
    # at γ = MSE the batch mean of log p(x|z) is -d/2 (log 2πγ + 1)
    assert lp.mean().item() == pytest.approx(-d / 2 * (math.log(2 * math.pi * best.item()) + 1), rel=1e-12)
    assert v.gamma.item() == pytest.approx(0.9 * 1.0 + 0.1 * best.item(), rel=1e-12)  # running average
    for _ in range(99):
        v.log_density(x, mean)
    assert v.gamma.item() == pytest.approx(best.item(), rel=1e-3)  # (1 - γ*)·0.9^100 ≈ 2e-5
    v.eval()
    at_running = -0.5 * (d * (math.log(2 * math.pi) + v.log_gamma) + sq / v.gamma)
    torch.testing.assert_close(v.log_density(x, mean), at_running)


def _train(update: str, x: torch.Tensor, steps: int) -> list[dict[str, float]]:
    torch.manual_seed(0)
    cfg = config_from_dict({
        "data": {"name": "digits"}, "net": {"arch": "infogan", "width": 0.125},
        "prior": {"kind": "realnvp", "layers": 2, "hidden": 16},
        "model": {"latent_dim": 8, "learn_gamma": True, "gamma_update": update},
        "objective": {"kind": "vae", "beta": 1.0, "lr": 1e-3},
    })
    model = build_model(cfg, (1, 28, 28))
    objective = build_objective(cfg, model)
    return [{k.split("/")[1]: v.item() for k, v in run_updates(objective, x).items() if k.startswith("autoencoder/")}
            for _ in range(steps)]


@pytest.mark.slow
def test_learned_gamma_follows_the_mse_within_150_steps_on_a_fixed_batch():
    steps = 150
    x = load_dataset("digits", "train").batch(torch.arange(32))  # (32, 1, 28, 28), one fixed batch
    log = _train("optimal", x, steps)
    d = 784
    for m in log:  # every step's loss used γ = that step's MSE: log p(x|z) = -d/2 (log 2π·MSE + 1) on average
        assert m["log_px"] == pytest.approx(-d / 2 * (math.log(2 * math.pi * m["mse"]) + 1), rel=1e-4)
    last = log[-1]
    assert last["mse"] < 0.5 * log[0]["mse"]  # the decoder did learn, so γ had to move
    # The logged (running) γ lags a falling MSE by ~10 steps; within 30% after 150 steps.
    assert last["gamma"] == pytest.approx(last["mse"], rel=0.3)
    # Dai & Wipf's gradient learning at the same lr: log γ moves ~lr per Adam step, so γ is still ~0.86.
    slow = _train("gradient", x, steps)[-1]
    assert slow["gamma"] > 10 * slow["mse"]
