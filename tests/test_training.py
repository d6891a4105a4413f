"""The training loop: exact resume (VAE, AAE, fp16), NaN stop with the last good checkpoint kept, verified
checkpoints, the resume policy, CLI."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from latentprior import cli
from latentprior.config import TrainConfig, config_from_dict
from latentprior.models.load import load_run
from latentprior.rundir import read_metrics
from latentprior.rundir.checkpoints import CheckpointError, load_checkpoint
from latentprior.training import run as run_module
from latentprior.training import train
from latentprior.training.distributed import DistContext
from latentprior.training.metrics_log import MetricWindow, NonFiniteLossError

ROOT = Path(__file__).resolve().parents[1]


AAE = {"prior": {"kind": "adversarial", "layers": 1, "hidden": 32, "disc_layers": 1, "disc_hidden": 32},
       "objective": {"kind": "aae", "beta": 1.0, "lr": 1e-3, "adversarial_loss": "nonsaturating", "r1_penalty": 1.0}}


def _cfg(sections=None, **train):
    return config_from_dict({
        "data": {"name": "digits"},
        "net": {"width": 0.0625},
        "prior": {"kind": "realnvp", "layers": 2, "hidden": 32},
        "model": {"latent_dim": 8},
        "objective": {"kind": "vae", "beta": 0.0, "lr": 1e-3},
        **(sections or {}),
        "train": {"epochs": 1, "prior_epochs": 0.5, "batch_size": 100, "log_every": 1, "checkpoint_every": 4,
                  "progress": False, **train},
    })


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


def test_resume_matches_uninterrupted_run(tmp_path):
    # digits: 1500 images -> 15 steps/epoch; 15 joint + 8 prior-only steps; stops after a checkpoint at 8 + 1 step
    _interrupted_equals_uninterrupted(_cfg(), tmp_path, stop=9)
    assert (tmp_path / "full" / "samples" / "samples.png").stat().st_size > 0
    assert (tmp_path / "full" / "config.yaml").exists()
    assert any((tmp_path / "full" / "tb").iterdir())


def test_training_time_is_summed_over_sessions(tmp_path):
    # a resumed run's summary reports the whole budget's training time: the first session's, as its last
    # checkpoint holds it, plus the second's
    cfg = _cfg()
    first = train(cfg, tmp_path, max_steps=9)
    kept = load_checkpoint(tmp_path)["train_seconds"]
    assert 0 < kept <= first["wall_s"] and first["train_s_total"] == first["wall_s"]
    second = train(cfg, tmp_path)
    assert second["steps_this_session"] == second["total_steps"] - 9
    assert second["train_s_total"] == pytest.approx(kept + second["wall_s"], rel=1e-12)
    assert load_checkpoint(tmp_path)["train_seconds"] <= second["train_s_total"]


def test_aae_resume_matches_uninterrupted_run(tmp_path):
    # the three updates (with R1) in the joint phase, prior and discriminator on the frozen encoder after it
    _interrupted_equals_uninterrupted(_cfg(AAE, epochs=0.4, prior_epochs=0.4), tmp_path, stop=5)


def test_fp16_resume_matches_uninterrupted_run(tmp_path):
    # fp16 autocast on the CPU, with its GradScaler: a fresh scaler after the resume (scale 2**16) would skip
    # the first resumed steps again while it recalibrates, and the losses would differ.
    # Batches of 10 (fp16 on the CPU is slow): 6 joint + 3 prior-only steps; the scale halves at each of the first 5.
    cfg = _cfg({"objective": {"kind": "vae", "beta": 1.0, "lr": 1e-3}}, epochs=0.04, prior_epochs=0.02, amp="fp16",
               batch_size=10)
    _interrupted_equals_uninterrupted(cfg, tmp_path, stop=3)
    scaler = load_checkpoint(tmp_path / "split")["scaler"]
    assert scaler["scale"] < 2.0**16  # it did calibrate: the restored state is not the initial one


def test_loading_a_run_does_not_import_the_training_loop():
    code = ("import sys; from latentprior.models import load_run; "
            "print(sorted(m for m in sys.modules if m.startswith('latentprior.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    loaded = done.stdout.strip()
    assert "latentprior.rundir.checkpoints" in loaded and "latentprior.training" not in loaded


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
        train(_cfg(), tmp_path / "run")
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


def test_corrupt_or_truncated_checkpoint_is_refused(tmp_path):
    run = tmp_path / "run"
    train(_cfg(epochs=0.4, prior_epochs=0), run)
    index = json.loads((run / "checkpoints" / "latest.json").read_text())
    path = run / "checkpoints" / index["file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt.*sha256"):
        load_run(run)
    path.write_bytes(bytes(data[: len(data) // 3]))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_run(run)


def test_checkpoint_that_is_not_a_dict_is_refused_in_one_line(tmp_path):
    buf = io.BytesIO()
    torch.save([1, 2, 3], buf)  # a valid torch file, listed with the right hash, but not our payload
    data = buf.getvalue()
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "step_00000001.pt").write_bytes(data)
    index = {"file": "step_00000001.pt", "sha256": hashlib.sha256(data).hexdigest(), "step": 1, "bytes": len(data)}
    (tmp_path / "checkpoints" / "latest.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=r"holds a list, not a latentprior-checkpoint/1 payload") as e:
        load_checkpoint(tmp_path)
    assert "\n" not in str(e.value)


def test_resume_refuses_a_different_model(tmp_path):
    run = tmp_path / "run"
    train(_cfg(epochs=0.2, prior_epochs=0), run)
    other = _cfg(epochs=0.2, prior_epochs=0).replace(**{"model.latent_dim": 4})
    with pytest.raises(CheckpointError, match="model.latent_dim"):
        train(other, run)


def test_cli_train_resume_sample_interpolate(tmp_path, capsys):
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text((ROOT / "configs" / "default.yaml").read_text())
    out = tmp_path / "run"
    small = ["--set", "net.width=0.0625", "--set", "prior.layers=2", "--set", "train.progress=false"]
    assert cli.main(["train", str(cfg_path), "--out", str(out), "--max-steps", "3", *small]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["step"] == 3
    assert cli.main(["resume", str(out), "--max-steps", "5"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["step"] == 5
    assert cli.main(["sample", str(out), "--n", "16", "--out", str(tmp_path / "s.png")]) == 0
    assert cli.main(["interpolate", str(out), "--out", str(tmp_path / "i.png"), "--pairs", "2", "--steps", "5"]) == 0
    assert cli.main(["interpolate", str(out), "--out", str(tmp_path / "b.png"), "--space", "base", "--pairs", "2"]) == 0
    for name in ("s.png", "i.png", "b.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a second `train` into the same directory is refused rather than silently mixed
    capsys.readouterr()
    assert cli.main(["train", str(cfg_path), "--out", str(out), *small]) == 2
    assert "already holds a run; use `latentprior resume" in capsys.readouterr().err
    # a bad override names the key and the valid choices
    assert cli.main(["train", str(cfg_path), "--out", str(tmp_path / "x"), "--set", "prior.kind=gaussian"]) == 2
    assert "choose one of ['normal', 'realnvp', 'glow'," in capsys.readouterr().err


def test_cli_aae_run_samples_through_its_mlp_and_refuses_base_space(tmp_path, capsys):
    out = tmp_path / "aae"
    sets = ["prior.kind=adversarial", "prior.layers=1", "prior.hidden=16", "prior.disc_layers=1",
            "prior.disc_hidden=16", "objective.kind=aae", "objective.adversarial_loss=nonsaturating",
            "objective.r1_penalty=1",
            "net.width=0.0625", "train.progress=false"]
    assert cli.main(["train", str(ROOT / "configs" / "default.yaml"), "--out", str(out), "--max-steps", "3",
                     *[a for s in sets for a in ("--set", s)]]) == 0
    capsys.readouterr()
    assert cli.main(["sample", str(out), "--n", "9", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli.main(["interpolate", str(out), "--out", str(tmp_path / "b.png"), "--space", "base"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: space='base' needs a flow prior") and "Traceback" not in err
    assert not (tmp_path / "b.png").exists()


def test_train_prior_extends_a_finished_run(tmp_path, capsys):
    run = tmp_path / "run"
    train(_cfg(epochs=0.4, prior_epochs=0), run)  # 6 joint steps
    enc = {k: v.clone() for k, v in load_run(run)[0].encoder.state_dict().items()}
    assert cli.main(["train-prior", str(run), "--epochs", "0.4"]) == 0
    model, cfg = load_run(run)
    assert cfg.train.prior_epochs == pytest.approx(0.4)
    assert load_checkpoint(run)["step"] == 12
    assert all(torch.equal(enc[k], v) for k, v in model.encoder.state_dict().items())  # frozen encoder
    assert [r["phase"] for r in read_metrics(run)][-6:] == ["prior"] * 6
