"""The training loop: exact resume (VAE, AAE, fp16), summed training time, NaN stop with the last good checkpoint
kept, the resume policy, prior-only epochs added to a finished run."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from latentprior import cli
from latentprior.config import TrainConfig
from latentprior.models.load import load_run
from latentprior.rundir import read_metrics
from latentprior.rundir.checkpoints import load_checkpoint
from latentprior.training import run as run_module
from latentprior.training import train
from latentprior.training.distributed import DistContext
from latentprior.training.metrics_log import MetricWindow, NonFiniteLossError
from tests.builders import tiny_vae_config

AAE = {"prior": {"kind": "adversarial", "layers": 1, "hidden": 32, "disc_layers": 1, "disc_hidden": 32},
       "objective": {"kind": "aae", "beta": 1.0, "lr": 1e-3, "adversarial_loss": "nonsaturating", "r1_penalty": 1.0}}


def _losses(run_dir):
    """(step, phase, {loss key: value}) of every record."""
    return [(r["step"], r["phase"], {k: v for k, v in r.items() if k.endswith("/loss")}) for r in read_metrics(run_dir)]


def _interrupted_equals_uninterrupted(cfg, tmp_path, stop: int) -> None:
    """A run stopped after step ``stop`` and resumed logs the losses of an uninterrupted one, to the last bit."""
    full = train(cfg, tmp_path / "full")
    assert full["step"] == full["total_steps"]
    train(cfg, tmp_path / "split", max_steps=stop)
    assert load_checkpoint(tmp_path / "split")["step"] == stop
    train(cfg, tmp_path / "split")
    a, b = _losses(tmp_path / "full"), _losses(tmp_path / "split")
    assert len(a) == full["step"] and [r[:2] for r in a] == [r[:2] for r in b]
    assert {r[1] for r in a} == {"joint", "prior"}
    for ra, rb in zip(a, b, strict=True):
        assert ra == rb, f"step {ra[0]} differs after resume"
    ma, _ = load_run(tmp_path / "full")
    mb, _ = load_run(tmp_path / "split")
    for (k, va), vb in zip(ma.state_dict().items(), mb.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k


@pytest.mark.slow
def test_resume_matches_uninterrupted_run(tmp_path):
    # digits: 1500 images -> 15 steps/epoch; 15 joint + 8 prior-only steps; stops after a checkpoint at 8 + 1 step
    _interrupted_equals_uninterrupted(tiny_vae_config(), tmp_path, stop=9)
    assert (tmp_path / "full" / "samples" / "samples.png").stat().st_size > 0
    assert (tmp_path / "full" / "config.yaml").exists()
    assert any((tmp_path / "full" / "tb").iterdir())


def test_training_time_is_summed_over_sessions(tmp_path):
    # a resumed run's summary reports the whole budget's training time: the first session's, as its last
    # checkpoint holds it, plus the second's
    cfg = tiny_vae_config()
    first = train(cfg, tmp_path, max_steps=9)
    kept = load_checkpoint(tmp_path)["train_seconds"]
    assert 0 < kept <= first["wall_s"] and first["train_s_total"] == first["wall_s"]
    second = train(cfg, tmp_path)
    assert second["steps_this_session"] == second["total_steps"] - 9
    assert second["train_s_total"] == pytest.approx(kept + second["wall_s"], rel=1e-12)
    assert load_checkpoint(tmp_path)["train_seconds"] <= second["train_s_total"]


def test_aae_resume_matches_uninterrupted_run(tmp_path):
    # the three updates (with R1) in the joint phase, prior and discriminator on the frozen encoder after it
    _interrupted_equals_uninterrupted(tiny_vae_config(AAE, epochs=0.4, prior_epochs=0.4), tmp_path, stop=5)


@pytest.mark.slow
def test_fp16_resume_matches_uninterrupted_run(tmp_path):
    # fp16 autocast on the CPU, with its GradScaler: a fresh scaler after the resume (scale 2**16) would skip
    # the first resumed steps again while it recalibrates, and the losses would differ.
    # Batches of 10 (fp16 on the CPU is slow): 6 joint + 3 prior-only steps; the scale halves at each of the first 5.
    cfg = tiny_vae_config({"objective": {"kind": "vae", "beta": 1.0, "lr": 1e-3}}, epochs=0.04, prior_epochs=0.02,
                          amp="fp16", batch_size=10)
    _interrupted_equals_uninterrupted(cfg, tmp_path, stop=3)
    scaler = load_checkpoint(tmp_path / "split")["scaler"]
    assert scaler["scale"] < 2.0**16  # it did calibrate: the restored state is not the initial one


def test_the_resume_policy_is_declared_on_the_train_fields():
    may_change = {f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("resume_may_change")}
    assert may_change == {"epochs", "prior_epochs", "log_every", "checkpoint_every", "samples_every", "images_every",
                          "device", "threads", "progress", "compile", "channels_last", "adam_impl", "cuda_graphs",
                          "loggers", "max_memory_gb"}


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    real = run_module.run_updates
    calls = {"n": 0}

    def poisoned(objective, x, phase="joint"):
        calls["n"] += 1
        out = real(objective, x, phase)
        if calls["n"] == 6:
            out["autoencoder/loss"] = torch.tensor(float("nan"))
        return out

    monkeypatch.setattr(run_module, "run_updates", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"the autoencoder update at step 6 \(phase joint\)"):
        train(tiny_vae_config(), tmp_path / "run")
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["step"] == 4  # the checkpoint before the bad step, untouched
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_metric_window_means_and_names_the_steps_a_late_check_covers():
    window = MetricWindow(DistContext(), None, step=10)
    for loss in (1.0, 2.0, 6.0):
        window.add({"prior/loss": torch.tensor(loss), "prior/log_pz": torch.tensor(-loss)}, images=100)
    means, images_per_s = window.means(13, "prior")
    assert means == {"prior/loss": 3.0, "prior/log_pz": -3.0} and images_per_s > 0
    window.add({"autoencoder/loss": torch.tensor(1.0), "prior/loss": torch.tensor(1.0)}, images=100)
    window.add({"autoencoder/loss": torch.tensor(float("inf")), "prior/loss": torch.tensor(1.0)}, images=100)
    with pytest.raises(NonFiniteLossError, match=r"of the autoencoder update in steps 14\.\.15 \(phase joint\)"):
        window.check(15, "joint")  # a GPU run checks at log steps only: the bad step is one of those since 13


def test_train_prior_extends_a_finished_run(tmp_path, capsys):
    run = tmp_path / "run"
    train(tiny_vae_config(epochs=0.4, prior_epochs=0), run)  # 6 joint steps
    enc = {k: v.clone() for k, v in load_run(run)[0].encoder.state_dict().items()}
    assert cli.main(["train-prior", str(run), "--epochs", "0.4"]) == 0
    model, cfg = load_run(run)
    assert cfg.train.prior_epochs == pytest.approx(0.4)
    assert load_checkpoint(run)["step"] == 12
    assert all(torch.equal(enc[k], v) for k, v in model.encoder.state_dict().items())  # frozen encoder
    assert [r["phase"] for r in read_metrics(run)][-6:] == ["prior"] * 6


