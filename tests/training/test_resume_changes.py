"""``latentprior resume RUN --set KEY=VALUE``: the keys a run may change mid-run (learning rates, budget, intervals,
threads, device, progress) take effect from the checkpoint's step and are recorded in config.yaml and the run's
config history; any other key is refused in one line naming it. The NaN stop's advice names a command that works:
``resume --set`` with a lower learning rate after a checkpoint, ``train ... --set`` before the first one."""

from __future__ import annotations

import re
import shlex
import shutil

import pytest
import torch
import yaml

from latentprior.cli import main
from latentprior.config import config_from_dict
from latentprior.rundir import RunDir, read_config_history, read_metrics, read_run_config
from latentprior.rundir.checkpoints import load_checkpoint, resume_keys
from latentprior.training import run as run_module
from latentprior.training import train

CONFIG = {"data": {"name": "digits"}, "net": {"width": 0.0625}, "prior": {"kind": "realnvp", "layers": 2, "hidden": 16},
          "model": {"latent_dim": 4}, "objective": {"kind": "vae", "beta": 0.0, "lr": 1.0e-3},
          "train": {"epochs": 1, "prior_epochs": 0, "batch_size": 100, "log_every": 1, "checkpoint_every": 4,
                    "progress": False, "device": "cpu"}}


def _records(run):
    return [(r["step"], r["autoencoder/loss"], r["lr/autoencoder"], r["lr/prior"]) for r in read_metrics(run)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A run stopped at its step-8 checkpoint, its uninterrupted twin, and a twin whose lr halves at step 8
    (trained through Python: ``train`` with the changed config continues the run)."""
    root = tmp_path_factory.mktemp("resume_set")
    cfg = config_from_dict(CONFIG)
    train(cfg, root / "full")
    train(cfg, root / "stopped", max_steps=8)
    shutil.copytree(root / "stopped", root / "halved")
    train(cfg.replace(**{"objective.lr": 5e-4}), root / "halved")
    return root


def test_the_keys_resume_may_change(runs):
    assert {"objective.lr", "objective.prior_lr", "objective.disc_lr", "train.epochs", "train.prior_epochs",
            "train.log_every", "train.checkpoint_every", "train.samples_every", "train.threads", "train.device",
            "train.progress", "train.max_memory_gb", "data.dir"} <= set(resume_keys())
    fixed = {"model.latent_dim", "train.batch_size", "train.seed", "objective.beta", "train.amp"}
    assert not fixed & set(resume_keys())


def test_a_learning_rate_change_takes_effect_and_is_recorded(runs, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(runs / "stopped", run)
    assert main(["resume", str(run), "--set", "objective.lr=5e-4", "--set", "train.log_every=1"]) == 0
    got, full = _records(run), _records(runs / "full")
    assert got[:8] == full[:8]  # the steps before the change are the run's own
    assert {r[2:] for r in got[8:]} == {(5e-4, 5e-4)}  # prior_lr is null: it follows lr
    assert [r[1] for r in got[8:]] != [r[1] for r in full[8:]]
    assert got == _records(runs / "halved")  # the CLI does what a Python caller's changed config does
    assert read_run_config(run)["objective"]["lr"] == 5e-4
    assert load_checkpoint(run)["config"].objective.lr == 5e-4
    history = read_config_history(run)
    assert [(h["step"], h["changes"]) for h in history] == [(8, {"objective.lr": {"from": 1e-3, "to": 5e-4}})]
    # resumed again as saved: nothing changes, nothing more is recorded
    assert main(["resume", str(run)]) == 0
    assert len(read_config_history(run)) == 1


@pytest.mark.parametrize("key, value", [("model.latent_dim", 8), ("train.batch_size", 50), ("objective.beta", 1.0),
                                        ("train.seed", 3)])
def test_a_key_that_decides_what_is_trained_is_refused_naming_it(key, value, runs, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(runs / "stopped", run)
    before = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert main(["resume", str(run), "--set", f"{key}={value}"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: resume --set {key}: {key} decides what the run trains"), lines
    assert "objective.lr" in lines[0]  # it lists the keys that may change
    assert {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_an_unknown_key_is_refused_listing_the_section(runs, tmp_path, capsys):
    assert main(["resume", str(runs / "stopped"), "--set", "objective.lrr=1"]) == 2
    assert "unknown key 'lrr' in section 'objective'" in capsys.readouterr().err


def _poison(monkeypatch, at: int) -> None:
    real, calls = run_module.run_updates, {"n": 0}

    def poisoned(objective, x, phase="joint"):
        calls["n"] += 1
        out = real(objective, x, phase)
        if calls["n"] == at:
            out["autoencoder/loss"] = torch.tensor(float("nan"))
        return out

    monkeypatch.setattr(run_module, "run_updates", poisoned)


def _advice(err: str) -> list[str]:
    line = err.strip().splitlines()[-1]
    cmd = re.findall(r"`([^`]+)`", line)
    assert len(cmd) == 1, line
    return shlex.split(cmd[0])


def _train_until_nan(tmp_path, monkeypatch, capsys, step):
    """``train`` with a NaN from ``step`` on: it stops with exit 2; returns the run directory and stderr."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    run = tmp_path / "run"
    _poison(monkeypatch, step)
    assert main(["train", str(config), "--out", str(run)]) == 2
    return run, capsys.readouterr().err


def test_the_nan_stop_advises_resume_with_a_lower_rate_and_that_command_works(tmp_path, monkeypatch, capsys):
    run, err = _train_until_nan(tmp_path, monkeypatch, capsys, 10)
    assert "keeps the last good state (step 8)" in err and "objective.lr is 0.001" in err
    cmd = _advice(err)
    assert cmd == ["latentprior", "resume", str(run), "--set", "objective.lr=0.0001"]
    monkeypatch.undo()
    assert main(cmd[1:]) == 0
    assert load_checkpoint(run)["step"] == 15 and read_metrics(run)[-1]["lr/autoencoder"] == 1e-4


def test_before_the_first_checkpoint_it_advises_training_again_and_that_works(tmp_path, monkeypatch, capsys):
    run, err = _train_until_nan(tmp_path, monkeypatch, capsys, 2)
    assert "before its first checkpoint, so there is nothing to resume" in err
    cmd = _advice(err)
    assert cmd == ["latentprior", "train", "CONFIG", "--out", str(run), "--set", "objective.lr=0.0001"]
    monkeypatch.undo()
    assert main(["train", str(tmp_path / "c.yaml"), *cmd[3:]]) == 0  # CONFIG: the file _train_until_nan wrote
    assert load_checkpoint(run)["config"].objective.lr == 1e-4 and RunDir(run).exists()
