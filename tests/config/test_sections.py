"""Config validation: unknown keys, bad values and wrong types fail with the valid choices listed."""

from __future__ import annotations

from pathlib import Path

import pytest

from latentprior.config import (
    Config,
    ConfigError,
    PriorConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
)

ROOT = Path(__file__).resolve().parents[2]
# Run configs: configs/*.yaml and the CPU presets. The other folders (sweeps, experiment files) hold files with
# their own schema and their own tests.
CONFIGS = sorted((ROOT / "configs").glob("*.yaml")) + sorted((ROOT / "configs" / "cpu").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_configs_load_and_round_trip(path):
    cfg = load_config(path)
    assert config_from_dict(config_to_dict(cfg)) == cfg


def test_required_configs_exist():
    names = {str(p.relative_to(ROOT / "configs")) for p in CONFIGS}
    assert {"cpu/mnist_vae_flow.yaml", "cpu/mnist_aae_adv.yaml", "mnist_vae_flow.yaml", "mnist_aae_adv.yaml",
            "mnist_vae_normal.yaml", "default.yaml"} <= names


@pytest.mark.parametrize("data,match", [
    ({"objective": {"beta": -0.1}}, r"objective.beta must be in \[0, inf\)"),
    ({"prior": {"kind": "gaussian"}}, r"choose one of \['normal', 'realnvp', .*, 'adversarial', 'custom'\]"),
    ({"prior": {"layer": 3}}, r"unknown key\(s\) \['layer'\] in section 'prior'; valid keys: \['kind', 'layers'"),
    ({"priors": {}}, r"unknown key\(s\) \['priors'\] in the top level"),
    ({"train": {"batch_size": "100"}}, r"train.batch_size: expected an integer"),
    ({"train": {"batch_size": 1.5}}, r"train.batch_size: expected an integer"),
    ({"model": {"learn_gamma": "yes"}}, r"model.learn_gamma: expected true/false"),
    ({"objective": {"kind": "aae"}, "prior": {"kind": "realnvp"}}, r"'aae' needs prior.kind 'adversarial'"),
    # cross-field rules, next to the fields they constrain
    ({"prior": {"kind": "realnvp", "noise_dim": 4}},
     r"^prior.noise_dim only applies to prior.kind 'adversarial', but prior.kind is 'realnvp'"),
    ({"prior": {"kind": "normal", "noise_dim": 4}}, r"^prior.noise_dim only applies to .* prior.kind is 'normal'"),
    ({"prior": {"kind": "adversarial", "noise_dim": 0}, "objective": {"kind": "aae"}},
     r"^prior.noise_dim must be >= 1 or null, got 0$"),
    ({"model": {"latent_dim": 1}}, r"^prior.kind 'realnvp' is a flow and needs model.latent_dim >= 2 .* got 1$"),
    ({"prior": {"kind": "normal"}, "train": {"prior_epochs": 15}},
     r"^train.prior_epochs = 15 trains the prior alone, but prior.kind 'normal' is a fixed N\(0, I\) with nothing "
     r"to train; set train.prior_epochs: 0 or choose prior.kind 'realnvp' or .* or 'adversarial'$"),
    ({"prior": {"kind": "normal"}, "objective": {"kind": "aae"}, "train": {"prior_epochs": 0.5}},
     r"^train.prior_epochs = 0.5 trains the prior alone"),
    ({"train": {"device": "gpu"}}, r"^train.device: 'gpu' is not valid; choose auto, cpu, mps, cuda or cuda:N$"),
])
def test_bad_values_are_rejected_with_choices(data, match):
    with pytest.raises(ConfigError, match=match):
        config_from_dict(data)


def test_overrides_are_typed():
    cfg = apply_overrides(Config(), ["objective.beta=0.5", "train.epochs=3", "prior.noise_dim=null"])
    assert cfg.objective.beta == 0.5 and cfg.train.epochs == 3.0 and cfg.prior.noise_dim is None
    with pytest.raises(ConfigError, match="unknown key 'betta' in section 'objective'"):
        apply_overrides(Config(), ["objective.betta=1"])
    with pytest.raises(ConfigError, match="section.key=value"):
        apply_overrides(Config(), ["objective.beta"])
    with pytest.raises(ConfigError, match="expected a number"):
        apply_overrides(Config(), ["objective.beta=high"])


def test_exponent_floats_without_a_dot_are_numbers_in_overrides_and_yaml(tmp_path):
    # PyYAML (YAML 1.1) reads "2e-4" as a string; a learning rate written that way must still be 0.0002.
    preset = Path(__file__).resolve().parents[2] / "configs/cpu/mnist_aae_adv.yaml"
    cfg = apply_overrides(load_config(preset), ["objective.prior_lr=2e-4", "objective.lr=1E-3"])
    assert cfg.objective.prior_lr == pytest.approx(2e-4) and cfg.objective.lr == pytest.approx(1e-3)
    path = tmp_path / "c.yaml"
    path.write_text("objective: {lr: 5e-5}\n")
    assert load_config(path).objective.lr == pytest.approx(5e-5)
    with pytest.raises(ConfigError, match="expected a number"):
        apply_overrides(cfg, ["objective.lr=fast"])
    with pytest.raises(ConfigError, match="expected an integer"):
        apply_overrides(cfg, ["train.batch_size=1e2"])  # an exponent is never silently an integer


@pytest.mark.parametrize("data", [
    {"prior": {"kind": "adversarial", "noise_dim": 8}, "objective": {"kind": "aae"}, "train": {"prior_epochs": 3}},
    {"prior": {"kind": "realnvp"}, "model": {"latent_dim": 2}, "train": {"prior_epochs": 3}},
    {"prior": {"kind": "normal"}, "model": {"latent_dim": 1}, "train": {"prior_epochs": 0}},
    {"prior": {"kind": "adversarial"}, "model": {"latent_dim": 1}, "objective": {"kind": "aae"}},
    {"train": {"device": "cuda:1"}},
])
def test_cross_field_rules_accept_what_they_allow(data):
    cfg = config_from_dict(data)
    assert {(s, k): getattr(getattr(cfg, s), k) for s, kv in data.items() for k in kv} == \
        {(s, k): v for s, kv in data.items() for k, v in kv.items()}


def test_prior_kind_properties():
    flags = {k: (PriorConfig(kind=k).is_flow, PriorConfig(kind=k).is_learnable)
             for k in ("normal", "realnvp", "adversarial")}
    assert flags == {"normal": (False, False), "realnvp": (True, True), "adversarial": (False, True)}


def test_bad_yaml_is_one_line_with_its_position(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model: {latent_dim: 2\ntrain: {}\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value).startswith(f"{path}: not valid YAML: ") and "\n" not in str(e.value)
    assert "line 2" in str(e.value)
    with pytest.raises(ConfigError, match="^config file not found: "):
        load_config(tmp_path / "absent.yaml")
