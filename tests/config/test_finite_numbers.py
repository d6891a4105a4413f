"""Every float of every config section is finite: NaN and +-inf are refused in one line naming the key, however
they arrive (YAML ``.inf``/``.nan``, ``--set``, an exponent too large for a float, a sweep's ``eval:`` block), and a
finite budget too large to count in steps is refused before a step is taken."""

from __future__ import annotations

import dataclasses
import math
import typing

import pytest

from latentprior.cli import main
from latentprior.config import Config, ConfigError, EvalConfig, apply_overrides, config_from_dict, eval_config_from_dict
from latentprior.training.run import RunBudget


def _float_fields(cls: type) -> list[str]:
    hints = typing.get_type_hints(cls)
    return [f.name for f in dataclasses.fields(cls) if float in (hints[f.name], *typing.get_args(hints[f.name]))]


RUN_FLOATS = [f"{s.name}.{name}" for s in dataclasses.fields(Config)
              for name in _float_fields(type(getattr(Config(), s.name)))]


def test_the_sections_have_the_float_fields_this_test_walks():
    # the walk finds them by annotation: a section's new float field is covered without editing this file
    assert {"train.epochs", "train.prior_epochs", "objective.lr", "objective.prior_lr", "model.gamma",
            "net.width", "train.max_memory_gb", "train.lr_halve_every"} <= set(RUN_FLOATS)
    assert _float_fields(EvalConfig) == ["ppl_epsilon", "ppl_rel_se", "temperature"]


@pytest.mark.parametrize("key", RUN_FLOATS)
@pytest.mark.parametrize("text", [".inf", "-.inf", ".nan", ".NaN", "1e999", "-1e999"])
def test_every_float_of_a_run_config_refuses_non_finite_values(key, text):
    with pytest.raises(ConfigError) as e:
        apply_overrides(Config(), [f"{key}={text}"])
    message = str(e.value)
    assert message.startswith(f"{key}: expected a finite number") and "\n" not in message


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 10**400])
def test_plain_data_and_eval_configs_refuse_them_too(value):
    with pytest.raises(ConfigError, match=r"^train\.epochs: expected a finite number"):
        config_from_dict({"train": {"epochs": value}})
    with pytest.raises(ConfigError, match=r"^eval\.ppl_epsilon: expected a finite number"):
        eval_config_from_dict({"ppl_epsilon": value})


def test_finite_floats_still_pass_and_ints_become_floats():
    cfg = apply_overrides(Config(), ["train.epochs=3", "objective.lr=2e-4", "model.gamma=1E5"])
    assert (cfg.train.epochs, cfg.objective.lr, cfg.model.gamma) == (3.0, 2e-4, 1e5)
    assert isinstance(cfg.train.epochs, float)


@pytest.mark.parametrize("epochs", [1e300, 1e15])
def test_a_budget_too_large_to_count_is_refused_naming_the_key(epochs):
    cfg = apply_overrides(Config(), [f"train.prior_epochs={epochs}", "prior.kind=realnvp"])
    with pytest.raises(ConfigError, match=r"^train\.prior_epochs = .* steps of 15 per epoch"):
        RunBudget(cfg, 15)


def test_lr_halving_never_overflows_and_a_negative_period_is_refused():
    with pytest.raises(ConfigError, match="train.lr_halve_every"):
        config_from_dict({"train": {"lr_halve_every": -1}})
    # before: 0.5 ** floor(step / steps_per_epoch / 1e-308) raised OverflowError (floor of inf)
    from latentprior.training.run import Run

    run = Run.__new__(Run)
    run.cfg = config_from_dict({"train": {"lr_halve_every": 1e-308}})
    run.sampler = type("S", (), {"steps_per_epoch": 15})()
    assert run.lr_scale(0) == 1.0 and run.lr_scale(7) == 0.0
    run.cfg = config_from_dict({"train": {"lr_halve_every": 2}})
    assert [run.lr_scale(s) for s in (0, 29, 30, 60)] == [1.0, 1.0, 0.5, 0.25]


@pytest.mark.parametrize("argv, key", [
    (["--set", "train.epochs=.inf"], "train.epochs"),
    (["--set", "objective.lr=.inf"], "objective.lr"),
    (["--set", "objective.prior_lr=-.inf"], "objective.prior_lr"),
    (["--set", "model.gamma=.nan"], "model.gamma"),
    (["--set", "train.epochs=1e300"], "train.epochs"),
])
def test_the_cli_refuses_in_one_line_and_writes_nothing(argv, key, tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {name: digits}\nnet: {width: 0.0625}\nprior: {kind: realnvp, layers: 2, hidden: 16}\n"
                   "train: {progress: false, device: cpu}\n")
    assert main(["train", str(cfg), "--out", str(tmp_path / "run"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and key in err[0], err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_train_prior_epochs_and_eval_options_refuse_infinity(tmp_path, capsys):
    assert main(["train-prior", str(tmp_path), "--epochs", "inf"]) == 2
    assert "--epochs: must be > 0 and finite, got inf" in capsys.readouterr().err
    assert main(["eval", str(tmp_path), "--ppl-epsilon", "inf"]) == 2
    assert "eval.ppl_epsilon: expected a finite number" in capsys.readouterr().err
    assert main(["eval", str(tmp_path), "--temperature", "nan"]) == 2
    assert "eval.temperature: expected a finite number" in capsys.readouterr().err
    assert main(["sample", str(tmp_path), "--out", str(tmp_path / "s.png"), "--temperature", "inf"]) == 2
    assert "--temperature: must be > 0 and finite, got inf" in capsys.readouterr().err
    assert main(["train-prior", str(tmp_path), "--prior", "maf", "--set", "prior.lr=.inf"]) == 2
    assert "prior.lr: expected a finite number" in capsys.readouterr().err
