"""The training loop: exact resume, NaN stop with the last good checkpoint kept, verified checkpoints, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from latentprior import cli
from latentprior.config import config_from_dict
from latentprior.training import CheckpointError, NonFiniteLossError, load_checkpoint, load_run, read_metrics, train
from latentprior.training import loop as loop_module

ROOT = Path(__file__).resolve().parents[1]


def _cfg(**train):
    return config_from_dict({
        "data": {"name": "digits"},
        "net": {"width": 0.0625},
        "prior": {"kind": "realnvp", "layers": 2, "hidden": 32},
        "model": {"latent_dim": 8},
        "objective": {"kind": "vae", "beta": 0.0, "lr": 1e-3},
        "train": {"epochs": 1, "prior_epochs": 0.5, "batch_size": 100, "log_every": 1, "checkpoint_every": 4,
                  "progress": False, **train},
    })


def _losses(run_dir):
    return [(r["step"], r["phase"], r["autoencoder/loss"] if "autoencoder/loss" in r else None, r["prior/loss"])
            for r in read_metrics(run_dir)]


def test_resume_matches_uninterrupted_run(tmp_path):
    cfg = _cfg()  # digits: 1500 images -> 15 steps/epoch; 15 joint + 8 prior-only steps
    full = train(cfg, tmp_path / "full")
    assert full["step"] == full["total_steps"] == 23
    train(cfg, tmp_path / "split", max_steps=9)  # stops after a checkpoint at 8 plus one more step
    assert load_checkpoint(tmp_path / "split")["step"] == 9
    train(cfg, tmp_path / "split")
    a, b = _losses(tmp_path / "full"), _losses(tmp_path / "split")
    assert [r[:2] for r in a] == [r[:2] for r in b]
    assert {r[1] for r in a} == {"joint", "prior"}
    for ra, rb in zip(a, b, strict=True):
        assert ra == rb, f"step {ra[0]} differs after resume"
    ma, _ = load_run(tmp_path / "full")
    mb, _ = load_run(tmp_path / "split")
    for (k, va), vb in zip(ma.state_dict().items(), mb.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    assert (tmp_path / "full" / "samples" / "samples.png").stat().st_size > 0
    assert (tmp_path / "full" / "config.yaml").exists()
    assert any((tmp_path / "full" / "tb").iterdir())


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    real = loop_module.run_updates
    calls = {"n": 0}

    def poisoned(objective, x, phase="joint"):
        calls["n"] += 1
        out = real(objective, x, phase)
        if calls["n"] == 6:
            out["autoencoder/loss"] = torch.tensor(float("nan"))
        return out

    monkeypatch.setattr(loop_module, "run_updates", poisoned)
    with pytest.raises(NonFiniteLossError, match="step 6"):
        train(_cfg(), tmp_path / "run")
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["step"] == 4  # the checkpoint before the bad step, untouched
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


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
    assert "choose one of ['normal', 'realnvp', 'adversarial']" in capsys.readouterr().err


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
