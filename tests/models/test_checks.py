"""The encoder's output size the model contract asks of your modules: (B, 2D) for a learned posterior variance,
(B, D) for the unit posterior (the mean alone)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from latentprior.models.build import build_model
from latentprior.models.checks import ModelContractError, check_model
from tests.builders import tiny_vae_config

D, SHAPE = 4, (1, 28, 28)


def _encoder(out: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, out))


@pytest.mark.parametrize(("model", "fits", "refused", "meaning"), [
    ({}, 2 * D, D, "the mean and raw variance of q"),
    ({"posterior": "unit"}, D, 2 * D, "the mean of q"),
])
def test_the_probe_asks_for_the_encoder_outputs_of_the_posterior(model, fits, refused, meaning):
    cfg = tiny_vae_config({"model": {"latent_dim": D, **model}})
    check_model(build_model(cfg, SHAPE, encoder=_encoder(fits)), cfg, SHAPE, probe=True)
    assert build_model(cfg, SHAPE).encoder(torch.zeros(2, *SHAPE)).shape == (2, fits)  # the built-in nets agree
    with pytest.raises(ModelContractError, match=rf"returned \(2, {refused}\) .* expected \(2, {fits}\): {meaning}"):
        check_model(build_model(cfg, SHAPE, encoder=_encoder(refused)), cfg, SHAPE, probe=True)
