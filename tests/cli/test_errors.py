"""The CLI's one error boundary: every bad input a new user may try ends as ONE line ``error: ...`` on stderr and
exit status 2, for every verb, without a traceback. Runs ``latentprior.cli.main`` in-process on tiny digits runs."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from latentprior.cli import main

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "configs" / "default.yaml"  # the embedded digits data: no download, no data dir
# Tiny and short, so that a rule that stopped refusing costs two steps, not a training.
TINY = ["--set", "net.width=0.0625", "--set", "prior.layers=2", "--set", "prior.hidden=16", "--set", "train.threads=1",
        "--set", "train.progress=false", "--set", "train.checkpoint_every=1", "--max-steps", "2"]


def fails(capsys, argv: list[str], *needles: str) -> str:
    """Run the CLI, expect exit 2 and a single ``error:`` line naming every needle; return that line."""
    assert main([str(a) for a in argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # no JSON result, no partial output
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def normal_run(tmp_path_factory) -> Path:
    """A 2-step run of a VAE with the fixed standard-normal prior (trained through the CLI)."""
    run = tmp_path_factory.mktemp("cli") / "normal"
    argv = ["train", str(DEFAULT), "--out", str(run), "--set", "prior.kind=normal", "--set", "train.prior_epochs=0",
            *TINY]
    assert main(argv) == 0
    return run


# ----------------------------------------------------------------------------- the inputs of the review


def test_noise_dim_with_a_flow_prior(capsys, tmp_path):
    fails(capsys, ["train", DEFAULT, "--out", tmp_path / "r", "--set", "prior.noise_dim=4", *TINY],
          "prior.noise_dim only applies to prior.kind 'adversarial'", "prior.kind is 'realnvp'")
    assert not (tmp_path / "r").exists()  # refused before anything is written


def test_latent_dim_1_with_a_flow_prior(capsys, tmp_path):
    fails(capsys, ["train", DEFAULT, "--out", tmp_path / "r", "--set", "model.latent_dim=1", *TINY],
          "prior.kind 'realnvp' is a flow", "model.latent_dim >= 2", "got 1")


def test_prior_epochs_with_a_fixed_prior(capsys, tmp_path):
    # The embedded default has prior_epochs: 15; switching its prior to N(0, I) is the obvious first experiment.
    fails(capsys, ["train", DEFAULT, "--out", tmp_path / "r", "--set", "prior.kind=normal", *TINY],
          "train.prior_epochs = 15", "prior.kind 'normal'", "set train.prior_epochs: 0")


def test_sweep_with_a_string_of_metrics(capsys, tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"base: {DEFAULT}\ngrid: {{objective.beta: [0, 1]}}\neval: {{metrics: fid}}\n")
    fails(capsys, ["sweep", sweep, "--out", tmp_path / "out", "--local"],
          str(sweep), "eval.metrics: expected a list, got 'fid'")
    assert not (tmp_path / "out").exists()


def test_sweep_with_an_unknown_metric_fails_before_training(capsys, tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"base: {DEFAULT}\ngrid: {{objective.beta: [0]}}\neval: {{metrics: [fid, is]}}\n")
    fails(capsys, ["sweep", sweep, "--out", tmp_path / "out", "--local"], "unknown metric(s) ['is']", "known: fid")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("n", ["0", "-3"])
def test_sample_n_not_positive(capsys, normal_run, tmp_path, n):
    fails(capsys, ["sample", normal_run, "--n", n, "--out", tmp_path / "s.png"], "argument --n", f"got {n}")
    assert not (tmp_path / "s.png").exists()


def test_eval_n_1(capsys, normal_run):
    fails(capsys, ["eval", normal_run, "--n", "1", "--metrics", "fid"], "eval.n must be >= 2", "got 1")


def test_eval_offers_no_inception_score(capsys, normal_run):
    fails(capsys, ["eval", normal_run, "--metrics", "fid,is", "--n", "10"], "unknown metric(s) ['is']")


def test_corrupt_sweep_json(capsys, tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"base: {DEFAULT}\ngrid: {{objective.beta: [0]}}\neval: {{metrics: [fid], n: 50}}\n")
    (tmp_path / "out").mkdir()
    state = tmp_path / "out" / "sweep.json"
    state.write_text('{"runs": {"a": ')  # what a full disk leaves behind
    fails(capsys, ["sweep", sweep, "--out", tmp_path / "out", "--local"], f"{state} is corrupt", "move it away")
    fails(capsys, ["report", tmp_path / "out"], f"{state} is corrupt")
    state.write_text("[1, 2]")  # valid JSON, but not a state file
    fails(capsys, ["sweep", sweep, "--out", tmp_path / "out", "--local"], f"{state} is not a sweep state file")


def test_train_prior_on_a_fixed_prior(capsys, normal_run):
    fails(capsys, ["train-prior", normal_run, "--epochs", "1"],
          str(normal_run), "fixed prior (prior.kind 'normal'", "nothing to train")


def test_checkpoint_payload_not_a_dict(capsys, tmp_path):
    ckpt = tmp_path / "run" / "checkpoints"
    ckpt.mkdir(parents=True)
    buf = io.BytesIO()
    torch.save([1, 2, 3], buf)  # a valid torch file with the right hash, but not a checkpoint
    data = buf.getvalue()
    (ckpt / "step_00000001.pt").write_bytes(data)
    index = {"file": "step_00000001.pt", "sha256": hashlib.sha256(data).hexdigest(), "step": 1, "bytes": len(data)}
    (ckpt / "latest.json").write_text(json.dumps(index))
    for argv in (["sample", tmp_path / "run", "--out", tmp_path / "s.png"], ["resume", tmp_path / "run"]):
        fails(capsys, argv, str(ckpt / "step_00000001.pt"), "list")


# ----------------------------------------------------------------------------- the boundary, for every verb


@pytest.mark.parametrize("argv,needles", [
    (["train", "absent.yaml", "--out", "{tmp}/r"], ["config file not found: absent.yaml"]),
    (["train", DEFAULT, "--out", "{tmp}/r", "--set", "objective.betta=1"], ["unknown key 'betta'"]),
    (["train", DEFAULT, "--out", "{tmp}/r", "--max-steps", "0"], ["argument --max-steps: must be >= 1, got 0"]),
    (["train-prior", "{tmp}", "--epochs", "0"], ["argument --epochs: must be > 0"]),
    (["resume", "{tmp}/nothing"], ["no checkpoint in"]),
    (["interpolate", "{tmp}/nothing", "--out", "{tmp}/i.png"], ["no checkpoint in"]),
    (["eval", "{tmp}/nothing", "--lpips-net", "squeeze"], ["argument --lpips-net: invalid choice: 'squeeze'"]),
    (["sweep", "{tmp}/absent.yaml", "--out", "{tmp}/o"], ["sweep file not found"]),
    (["figure", "latent2d", "{tmp}/nothing"], ["no checkpoint in"]),
    (["report", "{tmp}/nothing"], ["{tmp}/nothing"]),
    (["fly"], ["invalid choice: 'fly'", "latentprior --help"]),
    (["sample", "{tmp}"], ["the following arguments are required: --out"]),
])
def test_every_verb_reports_user_errors_in_one_line(capsys, tmp_path, argv, needles):
    fails(capsys, [str(a).replace("{tmp}", str(tmp_path)) for a in argv], *[n.replace("{tmp}", str(tmp_path))
                                                                            for n in needles])


def test_figure_of_a_run_without_a_2d_flow(capsys, normal_run):
    fails(capsys, ["figure", "latent2d", normal_run, "--n", "10"], "Fig. 2 needs a run with model.latent_dim = 2")


def test_train_into_an_existing_run(capsys, normal_run):
    fails(capsys, ["train", DEFAULT, "--out", normal_run], "already holds a run", f"latentprior resume {normal_run}")


def test_a_good_command_prints_its_result(capsys, normal_run, tmp_path):
    assert main(["sample", str(normal_run), "--n", "6", "--out", str(tmp_path / "s.png"), "--scale", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == {"out": str(tmp_path / "s.png"), "n": 6, "prior": None, "temperature": 1.0, "seed": 0}
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_python_dash_m_runs_the_same_cli(tmp_path):
    # torchrun starts `python -m latentprior.cli` in each process.
    proc = subprocess.run([sys.executable, "-m", "latentprior.cli", "sample", str(tmp_path), "--n", "0", "--out", "x"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == ("error: latentprior sample: argument --n: must be >= 1, got 0 "
                                   "(see `latentprior sample --help`)")


def test_sample_writes_a_real_jpeg_or_refuses_the_extension(capsys, normal_run, tmp_path):
    from PIL import Image

    assert main(["sample", str(normal_run), "--n", "4", "--out", str(tmp_path / "s.jpg")]) == 0
    with Image.open(tmp_path / "s.jpg") as im:
        assert im.format == "JPEG"
    capsys.readouterr()
    fails(capsys, ["sample", normal_run, "--out", tmp_path / "s.gif"], "s.gif: the extension must be one of .png")
    assert not (tmp_path / "s.gif").exists()


def _verbs(parser, name="latentprior"):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for verb, sub in action.choices.items():
                yield from _verbs(sub, f"{name} {verb}")
    yield name, parser


def test_every_option_of_every_verb_has_help_and_shows_its_default():
    import argparse

    from latentprior.cli import build_parser

    for name, parser in _verbs(build_parser()):
        missing = [a.dest for a in parser._actions if not a.help and not isinstance(a, argparse._SubParsersAction)]
        assert not missing, (name, missing)
        text = parser.format_help()
        for a in parser._actions:  # every option with a real default shows it
            if a.option_strings and a.default not in (None, False, argparse.SUPPRESS) and a.help:
                assert f"(default: {a.default})" in " ".join(text.split()), (name, a.dest)
