"""Each new prior kind through the real run machinery (training/: build, joint steps, prior-only steps,
checkpoints, previews): a run stopped mid-way and resumed logs the losses of an uninterrupted one, to the last
bit, and ends with the same weights; the finished run reloads and samples."""

from __future__ import annotations

import pytest
import torch

from latentprior.config import config_from_dict
from latentprior.models.load import load_run
from latentprior.rundir import read_metrics
from latentprior.rundir.checkpoints import load_checkpoint
from latentprior.training import train

KINDS = {
    "glow": {"kind": "glow", "layers": 2, "hidden": 16},
    "maf": {"kind": "maf", "layers": 2, "hidden": 16},
    "nsf": {"kind": "nsf", "layers": 2, "hidden": 16, "bins": 4},
    "gmm": {"kind": "gmm", "components": 3},
    "gmm-diagonal": {"kind": "gmm", "components": 3, "covariance": "diagonal"},
    "vamp": {"kind": "vamp", "components": 4},
}


def _cfg(prior: dict, beta: float):
    # digits: 1500 images -> 15 steps per epoch at batch 100: 6 joint + 3 prior-only steps
    return config_from_dict({
        "data": {"name": "digits"},
        "net": {"width": 0.0625},
        "prior": prior,
        "model": {"latent_dim": 4},
        "objective": {"kind": "vae", "beta": beta, "lr": 1e-3},
        "train": {"epochs": 0.4, "prior_epochs": 0.2, "batch_size": 100, "log_every": 1, "checkpoint_every": 2,
                  "progress": False},
    })


def _losses(run_dir):
    return [(r["step"], r["phase"], {k: v for k, v in r.items() if k.endswith("/loss")}) for r in read_metrics(run_dir)]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(KINDS))
def test_run_resumes_exactly(name: str, tmp_path) -> None:
    cfg = _cfg(KINDS[name], beta=1.0 if name == "vamp" else 0.0)  # vamp at β = 1: its prior term in F too
    full = train(cfg, tmp_path / "full")
    assert full["step"] == full["total_steps"] == 9
    train(cfg, tmp_path / "split", max_steps=5)  # stops one step after the checkpoint at step 4
    assert load_checkpoint(tmp_path / "split")["step"] == 5
    train(cfg, tmp_path / "split")
    a, b = _losses(tmp_path / "full"), _losses(tmp_path / "split")
    assert len(a) == 9 and {r[1] for r in a} == {"joint", "prior"}
    assert all("prior/loss" in r[2] for r in a)  # the prior learned at every step
    for ra, rb in zip(a, b, strict=True):
        assert ra == rb, f"step {ra[0]} differs after resume"
    ma, cfg_a = load_run(tmp_path / "full")
    mb, _ = load_run(tmp_path / "split")
    assert cfg_a.prior.kind == KINDS[name]["kind"]
    for (k, va), vb in zip(ma.state_dict().items(), mb.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    images = ma.sample(4, generator=torch.Generator().manual_seed(0), temperature=0.8)
    assert images.shape == (4, 1, 28, 28) and torch.all((images >= 0) & (images <= 1))
    assert (tmp_path / "full" / "samples" / "samples.png").stat().st_size > 0
