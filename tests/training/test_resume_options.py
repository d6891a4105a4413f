"""The speed options a run keeps (``TrainConfig.kept_from``): a run with today's defaults (fused Adam,
channels_last, the spectrally normalised infogan encoder) resumes bit for bit, and a run created when
``adam_impl: auto`` meant the per-parameter loop on the CPU (and NCHW was the default) keeps both, even when
resumed with a config that has today's defaults."""

from __future__ import annotations

import pytest
import torch
import yaml

from latentprior.config import TrainConfig, config_from_dict
from latentprior.models.load import load_run
from latentprior.objectives import AdamImpl
from latentprior.rundir import read_metrics
from latentprior.rundir.checkpoints import load_checkpoint
from latentprior.training import train
from latentprior.training.run import open_run


def _cfg(**train):
    # digits: 1500 images, 15 steps per epoch: 6 joint steps, then 3 prior-only steps
    return config_from_dict({
        "data": {"name": "digits"}, "net": {"arch": "infogan", "width": 0.0625}, "model": {"latent_dim": 8},
        "prior": {"kind": "realnvp", "layers": 2, "hidden": 16}, "objective": {"kind": "vae", "beta": 1.0, "lr": 1e-3},
        "train": {"epochs": 0.4, "prior_epochs": 0.2, "batch_size": 100, "log_every": 1, "checkpoint_every": 4,
                  "progress": False, "threads": 1, **train}})


def _losses(run_dir):
    return [(r["step"], {k: v for k, v in r.items() if k.endswith("/loss")}) for r in read_metrics(run_dir)]


def _same_weights(a, b) -> None:
    ma, _ = load_run(a)
    mb, _ = load_run(b)
    for (k, va), vb in zip(ma.state_dict().items(), mb.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k


def test_the_defaults_are_the_fast_ones():
    tc = TrainConfig()
    assert (tc.adam_impl, tc.channels_last) == ("fused", True)
    kept = {name for name, f in TrainConfig.__dataclass_fields__.items() if f.metadata.get("kept_by_run")}
    assert kept == {"adam_impl", "channels_last"}


@pytest.mark.slow
def test_a_run_with_the_defaults_resumes_bit_for_bit(tmp_path):
    cfg = _cfg()
    full = train(cfg, tmp_path / "full")
    train(cfg, tmp_path / "split", max_steps=5)  # a checkpoint at 4, one step past it redone
    assert load_checkpoint(tmp_path / "split")["step"] == 5
    train(cfg, tmp_path / "split")
    assert full["step"] == 9 and _losses(tmp_path / "full") == _losses(tmp_path / "split")
    assert {r["phase"] for r in read_metrics(tmp_path / "full")} == {"joint", "prior"}
    _same_weights(tmp_path / "full", tmp_path / "split")
    run = open_run(cfg, None)
    assert all(opt.param_groups[0]["fused"] for opt in run.objective.optimizers.values())
    assert run.model.encoder.body[2].weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.slow
def test_a_run_recorded_with_auto_keeps_the_loop_when_resumed_with_todays_defaults(tmp_path):
    """The old meaning of ``auto`` on the CPU (the per-parameter loop) is kept: resumed with a config that says
    ``fused`` (today's default, e.g. a sweep file without the key), the run continues as its uninterrupted twin
    made with ``auto`` throughout, and its config.yaml still says ``auto``."""
    old, today = _cfg(adam_impl="auto", channels_last=False), _cfg()
    train(old, tmp_path / "full")
    train(old, tmp_path / "split", max_steps=5)
    run = open_run(today, tmp_path / "split")
    assert run.cfg.train.adam_impl == "auto" and run.objective.adam_impl == AdamImpl()  # the loop, not fused
    assert run.model.encoder.body[2].weight.is_contiguous()  # NCHW, not channels_last
    saved = yaml.safe_load((tmp_path / "split" / "config.yaml").read_text())["train"]
    assert (saved["adam_impl"], saved["channels_last"]) == ("auto", False)
    train(today, tmp_path / "split")
    assert _losses(tmp_path / "full") == _losses(tmp_path / "split")
    _same_weights(tmp_path / "full", tmp_path / "split")
    # not trivially equal: with today's fused Adam the same run computes other last bits
    train(today, tmp_path / "fused")
    assert _losses(tmp_path / "fused") != _losses(tmp_path / "full")
