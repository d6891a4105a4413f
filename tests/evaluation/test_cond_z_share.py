"""cond_z_share: LPIPS between two samples of one condition over LPIPS between samples of two conditions, on
conditional models built by hand (decoders that ignore z, ignore y, or read both)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from latentprior.config import EvalConfig
from latentprior.evaluation.conditional_samples import (
    TooFewConditions,
    conditional_diversity,
    conditional_images,
    conditional_z_share,
)
from latentprior.evaluation.registry import METRICS, EvalInputs, NotConditional, check_condition
from latentprior.models.autoencoder import LatentAutoencoder
from latentprior.priors import StandardNormal

D = 3


class _Decoder(nn.Module):
    """G(z, y) = 0.2 + a_y · y + a_z · tanh(z W) (one 28 x 28 image per row of z)."""

    def __init__(self, a_y: float, a_z: float) -> None:
        super().__init__()
        self.a_y, self.a_z = a_y, a_z
        self.w = nn.Parameter(torch.randn(D, 28 * 28, generator=torch.Generator().manual_seed(0)))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 0.2 + self.a_y * y + self.a_z * torch.tanh(z @ self.w).view(-1, 1, 28, 28)


def _model(a_y: float, a_z: float) -> LatentAutoencoder:
    # p(z | y) = N(0, I) whatever y (StandardNormal accepts and ignores the context)
    return LatentAutoencoder(nn.Flatten(), _Decoder(a_y, a_z), StandardNormal(D), condition="top_half",
                             latent_dim=D)


class _SqL2(nn.Module):
    """A stand-in for LPIPS: squared L2 per pair, a module with a buffer as the LPIPS networks are."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("anchor", torch.zeros(()))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a - b).pow(2).flatten(1).sum(1)


def _images(n: int) -> torch.Tensor:
    return torch.randint(0, 256, (n, 1, 28, 28), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)


def test_z_share_is_zero_when_the_decoder_ignores_z():
    rec = conditional_z_share(_model(0.6, 0.0), _SqL2(), _images(150), seed=0, batch_size=64)
    assert rec["value"] == 0.0 and rec["within"] == 0.0 and rec["between"] > 0 and rec["n"] == 150


def test_z_share_is_positive_when_samples_depend_on_z_and_near_one_when_they_ignore_y():
    both = conditional_z_share(_model(0.4, 0.1), _SqL2(), _images(200), seed=0)
    z_only = conditional_z_share(_model(0.0, 0.3), _SqL2(), _images(200), seed=0)
    assert 0.05 < both["value"] < 0.9 and 0 < both["std_err"] < 0.1 * both["value"]
    assert z_only["value"] == pytest.approx(1.0, abs=4 * z_only["std_err"])  # y plays no part: within ~ between
    assert both["value"] < z_only["value"]


def test_the_numerator_is_cond_lpips_on_the_same_draws_and_batch_size_changes_nothing():
    model, images = _model(0.4, 0.1), _images(130)
    rec = conditional_z_share(model, _SqL2(), images, seed=3, batch_size=7)
    # the definition, on the protocol's draws: s_i, s'_i per condition, s'_(i+1 mod n) for the denominator
    draws = list(conditional_images(model, images, 3, 2))
    s, s2 = torch.cat([d[2] for d in draws]), torch.cat([d[3] for d in draws])
    want = _SqL2()(s, s2).double().sum() / _SqL2()(s, s2.roll(-1, 0)).double().sum()
    assert rec["value"] == pytest.approx(want.item(), rel=1e-12)
    assert rec["within"] == pytest.approx(conditional_diversity(model, _SqL2(), images, seed=3).mean().item(),
                                          rel=1e-12)
    assert conditional_z_share(model, _SqL2(), images, seed=3, batch_size=130) == pytest.approx(rec, rel=1e-12)
    with pytest.raises(TooFewConditions):
        conditional_z_share(model, _SqL2(), images[:1], seed=3)


def test_the_registered_metric_states_its_definition_and_refuses_what_it_cannot_measure():
    model = _model(0.4, 0.1)
    ds = type("Test", (), {"images": _images(50), "__len__": lambda self: 50})()  # the test split's two fields
    ev = EvalConfig(metrics=("cond_z_share",), lpips_pairs=40)
    run_config = SimpleNamespace(data=SimpleNamespace(condition="top_half"))
    x = EvalInputs(model, run_config, ds, 0, ev, {"dataset": "mnist"}, torch.device("cpu"), progress=False)
    x.shared["lpips_alex_28"] = (_SqL2(), {"network": "squared L2"})
    metric = METRICS["cond_z_share"]
    rec = metric.compute(x)
    assert set(metric.results) <= set(rec) and rec["protocol"]["pairs"] == 40
    assert rec["protocol"]["definition"].startswith("sum_i LPIPS(s_i, s'_i) / sum_i LPIPS(s_i, s'_(i+1 mod n))")
    assert rec["value"] == conditional_z_share(model, _SqL2(), ds.images[:40], seed=0)["value"]
    with pytest.raises(TooFewConditions, match="eval.lpips_pairs >= 2"):
        metric.check(EvalInputs(model, run_config, ds, 0, EvalConfig(lpips_pairs=1), {}, torch.device("cpu")))
    with pytest.raises(NotConditional):
        check_condition("cond_z_share", nn.Linear(1, 1))
