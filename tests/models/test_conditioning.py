"""Conditioning is an argument: one autoencoder whose encode/decode/sample take ``y=None``; a conditional model reads
y = c(x) itself where it can and refuses in one line where it cannot; metrics declare the condition they need."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from latentprior.evaluation.registry import METRICS, NotConditional, check_condition
from latentprior.models.autoencoder import ConditionRequired, LatentAutoencoder
from latentprior.priors import StandardNormal

D = 3


class _Decoder(nn.Module):
    """G(z[, y]) = y + z_0 (a conditional decoder), or z_0 everywhere (an unconditional one)."""

    def forward(self, z, y=None):
        out = z[:, :1, None, None].repeat(1, 1, 4, 4)
        return out if y is None else y + out


def _model(condition):
    return LatentAutoencoder(nn.Sequential(nn.Flatten(), nn.LazyLinear(2 * D)), _Decoder(), StandardNormal(D),
                             latent_dim=D, condition=condition)


def test_an_unconditional_model_takes_y_none_and_refuses_a_condition():
    m = _model(None)
    x = torch.rand(2, 1, 4, 4)
    assert not m.conditional and m.condition(x) is None and m.context(None) is None
    mean, logvar = m.encode(x)
    assert mean.shape == (2, D) and m.decode(mean).shape == (2, 1, 4, 4) and m.sample(5).shape == (5, 1, 4, 4)
    for call in (lambda: m.encode(x, x), lambda: m.decode(mean, x), lambda: m.sample(2, y=x)):
        with pytest.raises(ConditionRequired, match="unconditional") as e:
            call()
        assert "\n" not in str(e.value)


def test_a_conditional_model_reads_its_condition_and_refuses_to_go_without():
    m = _model("top_half")
    x = torch.rand(2, 1, 4, 4)
    y = m.condition(x)
    assert m.conditional and y.shape == x.shape and m.context(y).shape == (2, 16)
    assert torch.equal(torch.cat(m.encode(x)), torch.cat(m.encode(x, y)))  # y = c(x) when not given
    z = torch.zeros(2, D)
    assert torch.equal(m.decode(z, y), y)
    s = m.sample(2, generator=torch.Generator().manual_seed(0), y=y)  # G(z, y) with z ~ p(z | y) = N(0, I)
    z = StandardNormal(D).sample(2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s, (y + z[:, :1, None, None]).clamp(0, 1))
    for call in (lambda: m.decode(z), lambda: m.sample(2)):
        with pytest.raises(ConditionRequired, match="conditional \\(condition 'top_half'\\)"):
            call()
    with pytest.raises(ValueError, match="asked for 3 samples with 2 conditions"):
        m.sample(3, y=y)


def test_metrics_declare_the_condition_they_need_and_the_runner_checks_it():
    assert {m for m, e in METRICS.items() if e.condition == "required"} == {
        "cond_fid", "cond_mse", "cond_lpips", "cond_z_share"}
    check_condition("fid", _model(None))
    check_condition("cond_fid", _model("top_half"))
    with pytest.raises(NotConditional, match="metric cond_fid samples given conditions"):
        check_condition("cond_fid", _model(None))
    with pytest.raises(ConditionRequired, match="metric fid reads unconditional samples"):
        check_condition("fid", _model("top_half"))
