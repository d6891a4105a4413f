"""Sweep files: expansion into runs (names, precedence, seeds fixed across beta), typed blocks, one-line errors, the
shipped sweep files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from latentprior.config import ConfigError, EvalConfig, config_to_dict
from latentprior.sweeps import Resources, expand, load_sweep, sweep_from_dict
from tests.builders import TINY, tiny_spec

ROOT = Path(__file__).resolve().parents[2]


SWEEPS = sorted((ROOT / "configs" / "sweeps").glob("*.yaml"))


def test_grid_counts_names_and_precedence():
    spec = tiny_spec(grid={"objective.beta": [0, 0.01, 0.1, 1.0], "train.seed": [0, 1, 2]},
                     models={"flow": {"prior.kind": "realnvp", "objective.beta": 5.0},
                             "normal": {"prior.kind": "normal", "net.width": 0.125}},
                     overrides={"net.width": 0.25, "train.epochs": 0.2})
    trials = expand(spec)
    assert len(trials) == 4 * 3 * 2
    assert len({t.name for t in trials}) == len(trials)
    assert trials[0].name == "digits-flow-beta0-seed0"
    assert {t.name for t in trials} >= {"digits-flow-beta0.01-seed2", "digits-normal-beta1-seed1"}
    by = {t.name: t.cfg for t in trials}
    assert by["digits-flow-beta0.1-seed1"].objective.beta == 0.1  # the grid wins over the model's beta
    assert by["digits-flow-beta0.1-seed1"].net.width == 0.25  # sweep overrides apply ...
    assert by["digits-normal-beta0.1-seed1"].net.width == 0.125  # ... and a model's win over them
    assert by["digits-normal-beta0-seed0"].prior.kind == "normal"
    assert all(c.train.epochs == 0.2 for c in by.values())


def test_seeds_are_fixed_across_beta():
    spec = tiny_spec(grid={"objective.beta": [0, 0.1, 1], "train.seed": [3, 7]},
                     models={"a": {}, "b": {"prior.kind": "normal"}})
    groups: dict = {}
    for t in expand(spec):
        cfg = config_to_dict(t.cfg)
        beta = cfg["objective"].pop("beta")
        groups.setdefault((t.labels["model"], t.cfg.train.seed), []).append((beta, json.dumps(cfg, sort_keys=True)))
    assert sorted(groups) == [("a", 3), ("a", 7), ("b", 3), ("b", 7)]
    for members in groups.values():
        assert sorted(b for b, _ in members) == [0, 0.1, 1]
        assert len({c for _, c in members}) == 1  # within (model, seed), runs differ in beta alone


def test_a_model_entry_narrows_the_grid_for_itself_alone():
    spec = tiny_spec(grid={"objective.beta": [0, 0.1, 1], "train.seed": [0, 1]},
                     models={"flow": {}, "baseline": {"prior.kind": "normal",
                                                      "grid": {"objective.beta": [1], "train.seed": [0]}}})
    names = [t.name for t in expand(spec)]
    assert len(names) == 6 + 1
    assert [n for n in names if "baseline" in n] == ["digits-baseline-beta1-seed0"]
    assert sum("flow" in n for n in names) == 6  # the other model keeps the whole grid
    with pytest.raises(ConfigError, match=r"models.b.grid' names \['train.lr'\], which are not axes"):
        tiny_spec(models={"b": {"grid": {"train.lr": [1]}}})  # a new axis would change the names' shape
    with pytest.raises(ConfigError, match=r"models.b.grid' must map grid axes to non-empty lists"):
        tiny_spec(models={"b": {"grid": {"objective.beta": []}}})


def test_select_models_keeps_names():
    from latentprior.sweeps.grid import select_models

    spec = tiny_spec(models={"a": {}, "b": {"prior.kind": "normal"}})
    names = [t.name for t in expand(select_models(spec, ["b"]))]
    assert names == [t.name for t in expand(spec) if t.labels["model"] == "b"]
    with pytest.raises(ConfigError, match=r"no model\(s\) \['c'\]"):
        select_models(spec, ["c"])


def test_bad_sweeps_are_rejected():
    with pytest.raises(ConfigError, match=r"unknown key 'betta' in section 'objective'"):
        expand(tiny_spec(grid={"objective.betta": [0, 1]}))
    with pytest.raises(ConfigError, match=r"unknown sweep key\(s\) \['gird'\]"):
        sweep_from_dict({"base": TINY, "gird": {}}, ROOT)
    with pytest.raises(ConfigError, match="same name"):
        expand(tiny_spec(models={"a b": {}, "a_b": {}}))  # two labels that print alike


def test_sweep_blocks_parse_into_typed_configs():
    spec = tiny_spec(eval={"metrics": ["fid", "kid"], "n": 50}, resources={"cpus_per_trial": 2, "threads": 1})
    assert spec.eval == EvalConfig(metrics=("fid", "kid"), n=50, batch_size=100)
    assert spec.resources == Resources(cpus_per_trial=2.0, gpus_per_trial=0.0, threads=1, max_concurrent=None)
    assert type(spec.resources.cpus_per_trial) is float  # YAML's 2 is coerced like a run config's floats


@pytest.mark.parametrize("block,match", [
    ({"eval": {"metrics": "fid"}}, r"^eval.metrics: expected a list, got 'fid'$"),
    ({"eval": {"metrics": ["fid", "FID2"]}}, r"^eval.metrics: unknown metric\(s\) \['fid2'\]; known: fid, "),
    ({"eval": {"n": 1}}, r"^eval.n must be >= 2"),
    ({"eval": {"samples": 10}}, r"^unknown key\(s\) \['samples'\] in section 'eval'; valid keys: \['metrics', "),
    ({"resources": {"threads": "2"}}, r"^resources.threads: expected an integer, got '2'$"),
    ({"resources": {"gpus": 1}}, r"^unknown key\(s\) \['gpus'\] in section 'resources'"),
    ({"resources": {"max_concurrent": 0}}, r"^resources.max_concurrent must be >= 1 or null, got 0$"),
    ({"overrides": ["train.seed=1"]}, r"^sweep 'overrides' must map dotted config keys to values"),
    ({"retries": True}, r"^sweep 'retries' must be an integer >= 0, got True$"),
])
def test_bad_sweep_blocks_are_config_errors(block, match):
    with pytest.raises(ConfigError, match=match):
        tiny_spec(**block)


def test_load_sweep_names_the_file_and_reports_yaml_errors_in_one_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("base: {data: {name: digits}}\neval: {metrics: fid}\n")
    with pytest.raises(ConfigError, match=f"^{path}: eval.metrics: expected a list"):
        load_sweep(path)
    path.write_text("grid: {objective.beta: [0, 1}\n")
    with pytest.raises(ConfigError) as e:
        load_sweep(path)
    assert str(e.value).startswith(f"{path}: not valid YAML: ") and "line 1" in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_shipped_sweeps_expand(path):
    trials = expand(load_sweep(path))
    betas = {t.cfg.objective.beta for t in trials}
    dims = {t.cfg.model.latent_dim for t in trials}
    seeds = {t.cfg.train.seed for t in trials}
    models = {t.labels["model"] for t in trials}
    if path.stem.startswith("fig3_"):
        assert {0.0, 0.1, 1.0} <= betas
        assert {"vae_flow_fixed_gamma", "aae_adv"} <= models
        if "_cpu" not in path.stem:
            assert {0.0, 0.01, 0.1, 1.0} <= betas and len(seeds) == 5
            assert models == {"vae_flow_fixed_gamma", "vae_flow_learned_gamma", "aae_adv"}
            assert {t.cfg.model.learn_gamma for t in trials if t.labels["model"] == "vae_flow_learned_gamma"} == {True}
            assert len(trials) == len(betas) * 3 * 5
    if path.stem.startswith("fig5_"):
        assert dims == {16, 32, 64, 128} and betas == {0.0, 1.0}
    assert (path.parent / f"{path.stem}_cpu.yaml").is_file() or "_cpu" in path.stem  # a paper sweep has a CPU twin


# (dataset, flow layers, flow width, joint epochs, prior epochs, AAE epochs) from appendix A.3
PAPER_A3 = {"mnist": (24, 1024, 200, 100, 200), "fashion_mnist": (24, 1024, 300, 100, 300),
            "cifar10": (16, 256, 500, 100, 300), "celeba": (30, 1024, 200, 50, 200)}


@pytest.mark.parametrize("dataset", sorted(PAPER_A3))
def test_paper_sweeps_use_appendix_a3_sizes(dataset):
    layers, width, epochs, prior_epochs, aae_epochs = PAPER_A3[dataset]
    for t in expand(load_sweep(ROOT / "configs" / "sweeps" / f"fig3_{dataset}.yaml")):
        c = t.cfg
        assert (c.data.name, c.model.latent_dim, c.train.batch_size, c.objective.lr) == (dataset, 64, 100, 1e-4)
        if c.prior.kind == "realnvp":
            assert (c.prior.layers, c.prior.hidden, c.train.epochs, c.train.prior_epochs) == \
                   (layers, width, epochs, prior_epochs)
        else:
            assert (c.prior.layers, c.prior.hidden, c.prior.disc_layers, c.prior.disc_hidden) == (3, 1024, 2, 1024)
            assert c.train.epochs == aae_epochs
    if dataset == "cifar10":
        assert all(t.cfg.train.lr_halve_every == 250 for t in expand(load_sweep(
            ROOT / "configs" / "sweeps" / "fig3_cifar10.yaml")) if t.cfg.prior.kind == "realnvp")


def test_the_documented_sweep_example_expands():
    import yaml

    from latentprior.sweeps.checks import check_sample_counts

    text = (ROOT / "docs" / "sweeps.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.S).group(1)
    spec = sweep_from_dict(yaml.safe_load(block), ROOT / "configs" / "sweeps")  # base paths: relative to the file
    trials = expand(spec)
    check_sample_counts(spec.eval, trials)
    assert len(trials) == 2 * 3 * 2 + 2 and {t.labels["model_label"] for t in trials} == \
        {"VAE + RealNVP prior", "VAE + N(0, I) prior", "AAE + adversarial prior"}


def test_dataset_sizes_match_the_embedded_digits():
    from latentprior.data import load_dataset
    from latentprior.data.load import SIZES

    assert {s: len(load_dataset("digits", s)) for s in ("train", "test")} == SIZES["digits"]


