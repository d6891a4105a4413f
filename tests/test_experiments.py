"""Sweeps: grid expansion, restart, retries, a real 2-trial sweep on a local Ray, the shipped sweep files, Fig. 2.

Trainings are tiny digits runs (a few steps of a width-0.0625 network); evaluation is replaced by
:func:`fake_evaluate`, which writes an eval file from the run's checkpoint step (no Inception network).
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import pytest

from latentprior.config import ConfigError, config_to_dict
from latentprior.experiments import expand, load_sweep, run_sweep, run_trial, sweep_from_dict
from latentprior.experiments.state import SweepState
from latentprior.training import latest_checkpoint, train

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = sorted((ROOT / "configs" / "sweeps").glob("*.yaml"))

TINY = {"data": {"name": "digits"}, "net": {"width": 0.0625}, "prior": {"kind": "realnvp", "layers": 2, "hidden": 16},
        "model": {"latent_dim": 4}, "objective": {"kind": "vae", "lr": 1e-3},
        "train": {"epochs": 0.4, "prior_epochs": 0, "batch_size": 100, "log_every": 1, "checkpoint_every": 1,
                  "progress": False}}  # digits: 1500 training images -> 15 steps per epoch -> 6 steps


def tiny_spec(grid=None, models=None, **extra):
    data = {"name": "tiny", "base": TINY, "grid": grid or {"objective.beta": [0, 1], "train.seed": [0, 1]},
            "eval": {"metrics": ["fid"], "n": 10}, "resources": {"threads": 1, "max_concurrent": 1}, **extra}
    if models is not None:
        data["models"] = models
    return sweep_from_dict(data, ROOT / "configs")


def fake_evaluate(run_dir, metrics, **kwargs):
    """Stands in for evaluate_run: one eval file per metric, its value derived from the checkpoint step."""
    step = latest_checkpoint(Path(run_dir))["step"]
    for m in metrics:
        path = Path(run_dir) / "eval" / f"{m}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"value": 100.0 + step, "protocol": {"fake": True, **kwargs}}))
    return {m: 100.0 + step for m in metrics}


def fail_for(payload, needle, log):
    """A trial that always fails for runs whose name contains ``needle``; the others succeed without training."""
    with open(log, "a") as fh:  # an append from any process: how a test counts work done in Ray workers
        fh.write(payload["name"] + "\n")
    if needle in payload["name"]:
        raise RuntimeError(f"deliberate failure of {payload['name']}")
    d = Path(payload["run_dir"]) / "eval"
    d.mkdir(parents=True, exist_ok=True)
    for m in payload["metrics"]:
        (d / f"{m}.json").write_text(json.dumps({"value": 1.0, "protocol": "fake"}))
    return {"name": payload["name"], "pid": os.getpid()}


# ----------------------------------------------------------------------------- grid expansion


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


def test_select_models_keeps_names():
    from latentprior.experiments.grid import select_models

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
        if not path.stem.endswith("_cpu"):
            assert {0.0, 0.01, 0.1, 1.0} <= betas and len(seeds) == 5
            assert models == {"vae_flow_fixed_gamma", "vae_flow_learned_gamma", "aae_adv"}
            assert {t.cfg.model.learn_gamma for t in trials if t.labels["model"] == "vae_flow_learned_gamma"} == {True}
            assert len(trials) == len(betas) * 3 * 5
    if path.stem.startswith("fig5_"):
        assert dims == {16, 32, 64, 128} and betas == {0.0, 1.0}
    assert (path.parent / f"{path.stem}_cpu.yaml").is_file() or path.stem.endswith("_cpu")


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


# ----------------------------------------------------------------------------- restart and retries


def test_restart_skips_finished_runs_and_resumes_the_interrupted_one(tmp_path):
    spec = tiny_spec()  # 4 runs of 6 steps
    calls: list[tuple[str, int]] = []

    def killed_on_third(cfg, run_dir):
        calls.append((Path(run_dir).name, 0))
        if len(calls) == 3:  # the "kill": mid-training of the third run, after two have finished
            train(cfg, run_dir, max_steps=3)
            raise KeyboardInterrupt
        return train(cfg, run_dir)

    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, tmp_path, executor="local", progress=False,
                  trial_fn=functools.partial(run_trial, train_fn=killed_on_third, evaluate_fn=fake_evaluate))
    state = SweepState.open(tmp_path)
    assert state.counts() == {"pending": 2, "running": 0, "done": 2, "failed": 0}
    interrupted = calls[2][0]
    assert latest_checkpoint(tmp_path / "runs" / interrupted)["step"] == 3

    started: list[tuple[str, int]] = []

    def counting(cfg, run_dir):
        ckpt = latest_checkpoint(Path(run_dir))
        started.append((Path(run_dir).name, ckpt["step"] if ckpt else 0))
        return train(cfg, run_dir)

    result = run_sweep(spec, tmp_path, executor="local", progress=False,
                       trial_fn=functools.partial(run_trial, train_fn=counting, evaluate_fn=fake_evaluate))
    assert (result["skipped"], result["started"], result["done"], result["failed"]) == (2, 2, 4, [])
    assert len(started) == 2 and dict(started)[interrupted] == 3  # resumed from its checkpoint, not redone
    assert {n for n, _ in started}.isdisjoint({n for n, _ in calls[:2]})
    assert SweepState.open(tmp_path).runs[interrupted]["result"]["steps_this_session"] == 3

    again = run_sweep(spec, tmp_path, executor="local", progress=False,
                      trial_fn=functools.partial(run_trial, train_fn=counting, evaluate_fn=fake_evaluate))
    assert (again["skipped"], again["started"], len(started)) == (4, 0, 2)

    started.clear()  # a new FID sample count: every run is evaluated again from its finished checkpoint
    renewed = run_sweep(spec, tmp_path, executor="local", progress=False, eval_n=20,
                        trial_fn=functools.partial(run_trial, train_fn=counting, evaluate_fn=fake_evaluate))
    assert (renewed["skipped"], renewed["started"], renewed["done"]) == (0, 4, 4)
    assert sorted(step for _, step in started) == [6, 6, 6, 6]  # resumed at the end: nothing retrained


def test_failing_trial_is_retried_once_then_marked_failed(tmp_path):
    log = tmp_path / "calls.txt"
    spec = tiny_spec(grid={"objective.beta": [0, 0.1, 1]})
    result = run_sweep(spec, tmp_path / "sweep", executor="local", progress=False,
                       trial_fn=functools.partial(fail_for, needle="beta0.1", log=log))
    calls = log.read_text().split()
    assert calls.count("digits-beta0.1") == 2 and len(calls) == 4
    assert result["failed"] == ["digits-beta0.1"] and result["done"] == 2
    rec = SweepState.open(tmp_path / "sweep").runs["digits-beta0.1"]
    assert (rec["status"], rec["attempts"]) == ("failed", 2)
    assert "deliberate failure of digits-beta0.1" in rec["error"]


def test_cli_sweep_local_then_report(tmp_path, monkeypatch, capsys):
    from latentprior.cli import main
    from latentprior.experiments import trial

    monkeypatch.setattr(trial, "_default_evaluate", fake_evaluate)
    sweep = tmp_path / "s.yaml"
    sweep.write_text(json.dumps({"base": TINY | {"train": TINY["train"] | {"epochs": 0.2}},
                                 "grid": {"objective.beta": [0, 1]}, "eval": {"metrics": ["fid"]}}))
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "out"), "--local", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (out["trials"], out["done"], out["executor"]) == (2, 2, "local")
    assert main(["report", str(tmp_path / "out")]) == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rep["with_results"] == 2 and Path(rep["html"]).is_file() and len(rep["plots"]) == 1


# ----------------------------------------------------------------------------- Ray


def test_two_trial_sweep_on_a_local_ray(tmp_path):
    spec = tiny_spec(grid={"objective.beta": [0, 1]}, resources={"threads": 1, "max_concurrent": 2})
    fn = functools.partial(run_trial, evaluate_fn=fake_evaluate)
    result = run_sweep(spec, tmp_path, trial_fn=fn, progress=False)  # starts, then stops, its own Ray
    assert (result["executor"], result["local"], result["cluster_cpus"]) == ("ray", True, 2.0)
    assert (result["done"], result["failed"], result["started"]) == (2, [], 2)
    state = SweepState.open(tmp_path)
    for name in ("digits-beta0", "digits-beta1"):
        rec = state.runs[name]
        assert rec["status"] == "done" and rec["result"]["pid"] != os.getpid()  # ran in a Ray worker
        assert rec["result"]["steps"] == 6 and rec["eval"] == {"fid": 106.0}
    again = run_sweep(spec, tmp_path, trial_fn=fn, progress=False)
    assert (again["skipped"], again["started"]) == (2, 0)


def test_failing_trial_on_ray_is_retried_once(tmp_path):
    log = tmp_path / "calls.txt"
    spec = tiny_spec(grid={"objective.beta": [0, 1]}, resources={"threads": 1, "max_concurrent": 2})
    result = run_sweep(spec, tmp_path / "sweep", trial_fn=functools.partial(fail_for, needle="beta1", log=log),
                       progress=False)
    assert result["failed"] == ["digits-beta1"] and result["done"] == 1
    assert sorted(log.read_text().split()) == ["digits-beta0", "digits-beta1", "digits-beta1"]
    rec = SweepState.open(tmp_path / "sweep").runs["digits-beta1"]
    assert rec["attempts"] == 2 and "deliberate failure" in rec["error"]


# ----------------------------------------------------------------------------- Fig. 2


def test_latent2d_figure_from_a_2d_run(tmp_path):
    import torch

    from latentprior.config import config_from_dict
    from latentprior.experiments.figures import latent2d_figure, latent2d_points
    from latentprior.training import load_run

    cfg = config_from_dict(TINY | {"model": {"latent_dim": 2}, "train": TINY["train"] | {"epochs": 0.2}})
    train(cfg, tmp_path / "run")
    result = latent2d_figure(tmp_path / "run", n=200, split="test")
    png = Path(result["out"])
    assert png == tmp_path / "run" / "figures" / "latent2d.png" and png.read_bytes()[:4] == b"\x89PNG"
    assert result["labels"] and result["n"] == 200

    model, _ = load_run(tmp_path / "run")
    for t in model.prior.transforms:  # a zero-initialised coupling is the identity: make the flow non-trivial
        for p in t.parameters():
            torch.nn.init.normal_(p, std=0.3)
    pts = latent2d_points(model, torch.rand(50, 1, 28, 28), n_prior=40, generator=torch.Generator().manual_seed(0))
    assert pts["z"].shape == (50, 2) and pts["zp"].shape == (40, 2)
    with torch.no_grad():
        fz, _ = model.prior.to_base(torch.from_numpy(pts["z"]))
        zp, _ = model.prior.from_base(torch.from_numpy(pts["u"]))
    assert torch.allclose(fz, torch.from_numpy(pts["fz"]), atol=1e-5)  # (a) is f of the points in (b)
    assert torch.allclose(zp, torch.from_numpy(pts["zp"]), atol=1e-5)  # (d) is f^-1 of N(0, I) draws
    assert not torch.allclose(torch.from_numpy(pts["fz"]), torch.from_numpy(pts["z"]), atol=1e-3)


def test_latent2d_rejects_other_latent_sizes(tmp_path):
    from latentprior.config import config_from_dict
    from latentprior.experiments.figures import latent2d_figure

    cfg = config_from_dict(TINY | {"train": TINY["train"] | {"epochs": 0.07}})
    train(cfg, tmp_path / "run")
    with pytest.raises(ValueError, match="latent_dim = 2"):
        latent2d_figure(tmp_path / "run", n=20)
