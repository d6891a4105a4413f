"""A conditional run resumes exactly."""

from __future__ import annotations

import pytest
import torch

from latentprior.objectives.cvae import kl_weight
from tests.builders import COND_DIM, COND_SIDE, conditional_config

DIM, SIDE = COND_DIM, COND_SIDE


def test_a_conditional_run_resumes_exactly(tmp_path):
    # digits: 15 steps/epoch -> 6 joint steps (the KL weight rises over steps 1..4) + 3 prior-only steps
    from latentprior.models.load import load_run
    from latentprior.rundir import read_metrics
    from latentprior.rundir.checkpoints import load_checkpoint
    from latentprior.training import train

    cfg = conditional_config()
    full = train(cfg, tmp_path / "full")
    assert full["step"] == full["total_steps"] == 9
    train(cfg, tmp_path / "split", max_steps=3)
    assert load_checkpoint(tmp_path / "split")["step"] == 3
    train(cfg, tmp_path / "split")
    a, b = read_metrics(tmp_path / "full"), read_metrics(tmp_path / "split")
    assert [r["phase"] for r in a] == ["joint"] * 6 + ["prior"] * 3
    assert [r["autoencoder/kl_weight"] for r in a[:6]] == pytest.approx(
        [kl_weight(i, 1, 4) for i in range(6)])
    for ra, rb in zip(a, b, strict=True):
        assert {k: v for k, v in ra.items() if k.endswith("loss")} == {k: v for k, v in rb.items()
                                                                       if k.endswith("loss")}, ra["step"]
    ma, _ = load_run(tmp_path / "full")
    mb, _ = load_run(tmp_path / "split")
    assert ma.conditional and ma.condition_name == "downsample7"
    for (k, va), vb in zip(ma.state_dict().items(), mb.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    assert (tmp_path / "full" / "samples" / "samples.png").stat().st_size > 0


