"""Every verb that loads a model, trains or evaluates takes --weights-dir (and --data-dir where it reads data);
the options set the environment variables that every module below the CLI reads."""

from __future__ import annotations

import os

import pytest

from latentprior.cli import build_parser
from latentprior.cli.options import DIR_ENV, apply_dir_options

# verb argv (without the options under test) -> whether it reads a dataset
VERBS = {
    ("train", "c.yaml", "--out", "r"): True,
    ("resume", "r"): True,
    ("train-prior", "r", "--epochs", "1"): True,
    ("sample", "r", "--out", "s.png"): False,
    ("interpolate", "r", "--out", "i.png"): True,
    ("eval", "r"): True,
    ("sweep", "s.yaml", "--out", "d"): True,
    ("figure", "latent2d", "r"): True,
    ("experiment", "disentanglement", "f.yaml", "--out", "d"): True,
}


@pytest.mark.parametrize("argv, reads_data", VERBS.items(), ids=[v[0] for v in VERBS])
def test_every_model_or_data_verb_takes_the_folders(argv, reads_data):
    extra = ["--weights-dir", "w"] + (["--data-dir", "d"] if reads_data else [])
    args = build_parser().parse_args([*argv, *extra])
    assert args.weights_dir == "w" and (not reads_data or args.data_dir == "d")


def test_dir_options_set_the_environment(monkeypatch, tmp_path):
    for env in DIR_ENV.values():
        monkeypatch.delenv(env, raising=False)
    args = build_parser().parse_args(["eval", "r", "--weights-dir", str(tmp_path / "w"), "--cache-dir", "c"])
    apply_dir_options(args)
    assert os.environ["LATENTPRIOR_WEIGHTS_DIR"] == str(tmp_path / "w")
    assert os.environ["LATENTPRIOR_CACHE_DIR"] == os.path.abspath("c")


def test_readme_names_the_environment_variables():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for env in ("LATENTPRIOR_DATA_DIR", *DIR_ENV.values()):
        assert env in readme
