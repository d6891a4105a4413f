"""The training and generation verbs end to end: train, resume, sample, interpolate (a VAE and an AAE)."""

from __future__ import annotations

import json
from pathlib import Path

from latentprior import cli

ROOT = Path(__file__).resolve().parents[2]


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


