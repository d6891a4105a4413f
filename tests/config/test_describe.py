"""`latentprior config keys/show` and docs/config.md, generated from the config dataclasses."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from latentprior.cli import main
from latentprior.cli.config import config_markdown, key_groups
from latentprior.config import Config, config_from_dict, config_to_dict, load_config
from latentprior.config.describe import describe, type_name

ROOT = Path(__file__).resolve().parents[2]


def test_every_key_has_a_description():
    missing = [d.key for _, _, docs in key_groups() for d in docs if len(d.help.split()) < 2]
    assert missing == []


def test_a_key_without_a_description_is_caught():
    @dataclasses.dataclass(frozen=True)
    class Section:
        documented: int = dataclasses.field(default=1, metadata={"help": "a described key"})
        bare: int = 2

    docs = {d.key: d for d in describe(Section, "s.")}
    assert docs["s.documented"].help == "a described key" and docs["s.bare"].help == ""


def test_docs_config_md_is_current():
    text = (ROOT / "docs" / "config.md").read_text()
    assert text == config_markdown(), "stale: run `latentprior config keys --markdown > docs/config.md`"


def test_keys_cover_every_field_with_type_default_and_choices():
    docs = {d.key: d for _, _, group in key_groups() for d in group}
    # every leaf of a default Config, and nothing else, is listed under the run config
    run_keys = {d.key for d in key_groups()[0][2]}
    flat = {f"{s}.{k}" for s, section in config_to_dict(Config()).items() for k in section}
    assert run_keys == flat
    assert (docs["net.arch"].type, docs["net.arch"].default) == ("str", "conv4")
    assert set(docs["net.arch"].choices) == {"infogan", "conv4", "resnet", "unet"}
    assert (docs["train.threads"].type, docs["train.threads"].default) == ("int or null", "null")
    assert (docs["train.loggers"].type, docs["train.loggers"].default) == ("list of str", "[tensorboard]")
    assert set(docs["train.loggers"].choices) == {"tensorboard", "mlflow", "wandb"}
    assert docs["train.epochs"].resume_may_change and not docs["train.batch_size"].resume_may_change
    assert docs["eval.n"].default == "10000" and docs["resources.threads"].default == "1"
    assert type_name(float | None) == "float or null"


def test_config_keys_cli_lists_every_key(capsys):
    assert main(["config", "keys"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == sum(len(g) for _, _, g in key_groups())
    arch = next(line for line in lines if line.startswith("net.arch "))
    assert "{infogan, conv4, resnet, unet}" in arch and "= conv4" in arch


def test_config_show_prints_the_resolved_config_with_overrides(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("data: {name: digits}\nmodel: {latent_dim: 8}\n")
    assert main(["config", "show", str(path), "--set", "objective.beta=0.5", "--set",
                 "train.loggers=[tensorboard, mlflow]"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    want = load_config(path, ["objective.beta=0.5", "train.loggers=[tensorboard, mlflow]"])
    assert config_from_dict(shown) == want and shown["prior"]["layers"] == 24  # defaults filled in
    assert shown["train"]["loggers"] == ["tensorboard", "mlflow"]


def test_config_show_reads_presets_and_run_folders(tmp_path, capsys):
    assert main(["config", "show", "default"]) == 0
    assert config_from_dict(yaml.safe_load(capsys.readouterr().out)) == load_config(ROOT / "configs" / "default.yaml")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("data: {name: digits}\n")
    assert main(["config", "show", str(run)]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["data"]["name"] == "digits"


@pytest.mark.parametrize("argv, words", [
    (["config", "show", "no_such_preset"], ["not found", "presets:", "default"]),
    (["config", "show", "default", "--set", "train.nope=1"], ["unknown key 'nope'"]),
    (["config", "show", "default", "--set", "train.loggers=[tensorboard, comet]"], ["'comet' is not valid"]),
])
def test_config_show_mistakes_are_one_line(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(w in err for w in words), err


def test_version_flag():
    out = subprocess.run([sys.executable, "-m", "latentprior.cli", "--version"], capture_output=True, text=True,
                         check=True).stdout
    import latentprior

    assert out.strip() == f"latentprior {latentprior.__version__}"
