"""A study over seeds: each seed's replicate in DIR/seed<k> with train.seed = eval.seed = k, the mean ± std rows
equal to the per-seed eval records, the claims' verdicts from the same values, and a one-seed folder written
before seed lists existed reused as the replicate of its seed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from latentprior.rundir import read_eval_record, read_run_config, write_run_config
from latentprior.studies.replicates import replicate_dir
from tests.builders import PoolFeatures

ARMS = ("original", "proposed")
TASKS = Path(__file__).resolve().parents[2] / "configs" / "conditional"


def _task(seeds=None) -> dict:
    run = {"data": {"name": "digits", "condition": "downsample7"}, "net": {"arch": "unet", "width": 0.125},
           "prior": {"layers": 2, "hidden": 16, "cond_embed": 8}, "model": {"latent_dim": 4, "posterior": "unit"},
           "objective": {"kind": "cvae", "adam_beta1": 0.5, "adam_beta2": 0.9},
           "train": {"epochs": 0.2, "batch_size": 100, "progress": False}}
    task = {"run": run, "original": {"prior.kind": "normal", "objective.beta": 1.0},
            "proposed": {"prior.kind": "realnvp"}, "eval": {"metrics": ["cond_fid", "cond_mse"], "n": 20},
            "grid": {"conditions": 2, "samples": 1}}
    return task if seeds is None else task | {"seeds": seeds}


@pytest.mark.slow
def test_a_two_seed_study_writes_the_mean_and_std_of_its_per_seed_eval_records(tmp_path, monkeypatch):
    import latentprior.evaluation.registry as registry
    from latentprior.studies.translation import run_conditional, task_from_dict

    monkeypatch.setattr(registry, "make_feature_extractor", lambda device: PoolFeatures())
    out = tmp_path / "study"
    result = run_conditional(task_from_dict(_task([3, 5])), out, progress=False)
    values = {}
    for seed in (3, 5):
        for arm in ARMS:
            run = out / f"seed{seed}" / arm
            assert read_run_config(run)["train"]["seed"] == seed  # each replicate trains with its seed
            for metric in ("cond_fid", "cond_mse"):
                record = read_eval_record(run, metric)
                assert record["protocol"]["seed"] == seed  # ... and draws its samples with it
                values.setdefault((arm, metric), []).append(record["value"])
    with open(out / "table_seeds.csv") as f:
        rows = {r["model"]: r for r in csv.DictReader(f)}
    for arm in ARMS:
        for col, metric in (("fid", "cond_fid"), ("recon_mse", "cond_mse")):
            v = values[(arm, metric)]
            assert float(rows[arm][f"{col}_mean"]) == pytest.approx(np.mean(v), rel=1e-12)
            assert float(rows[arm][f"{col}_std"]) == pytest.approx(np.std(v, ddof=1), rel=1e-12)
        assert rows[arm]["n"] == "2" and rows[arm]["seeds"] == "3 5"
    assert values[("proposed", "cond_fid")][0] != values[("proposed", "cond_fid")][1]  # the seeds differ
    md = (out / "table_seeds.md").read_text()
    assert "| original | 3,5 |" in md and "mean ± std over seeds" in md
    claims = json.loads((out / "claims.json").read_text())
    assert [c["metric"] for c in claims] == ["cond_fid"]  # diversity and z share were not evaluated
    assert claims[0]["a"]["values"] == values[("proposed", "cond_fid")]
    assert claims[0]["b"]["values"] == values[("original", "cond_fid")]
    assert claims == result["claims"] and "**" in (out / "claims.md").read_text()
    for seed in (3, 5):  # each replicate is an ordinary one-seed study folder
        assert (out / f"seed{seed}" / "table.md").is_file() and (out / f"seed{seed}" / "grid.png").is_file()


@pytest.mark.slow
def test_a_one_seed_folder_of_before_is_the_replicate_of_its_seed(tmp_path, monkeypatch):
    import latentprior.evaluation.registry as registry
    from latentprior.studies.translation import run_conditional, task_from_dict

    monkeypatch.setattr(registry, "make_feature_extractor", lambda device: PoolFeatures())
    out = tmp_path / "old"
    run_conditional(task_from_dict(_task()), out, progress=False)  # no seed list: DIR/<model>, as before
    assert not (out / "seed0").exists() and (out / "original" / "config.yaml").is_file()
    stamp = (out / "proposed" / "eval" / "cond_fid.json").stat().st_mtime_ns
    old_fid = read_eval_record(out / "proposed", "cond_fid")["value"]
    result = run_conditional(task_from_dict(_task()), out, seeds=(0, 1), progress=False)
    assert (out / "proposed" / "eval" / "cond_fid.json").stat().st_mtime_ns == stamp  # reused, not redone
    assert not (out / "seed0").exists() and (out / "seed1" / "proposed" / "config.yaml").is_file()
    assert result["claims"][0]["a"]["values"][0] == old_fid
    assert (out / "table.md").is_file() and (out / "table_seeds.md").is_file()


def test_replicate_dir_finds_a_legacy_run_of_the_seed(tmp_path):
    from latentprior.config import config_from_dict

    assert replicate_dir(tmp_path, 0, "vae") == tmp_path / "seed0"  # nothing there yet
    write_run_config(tmp_path / "vae", config_from_dict({"train": {"seed": 2}}))
    assert replicate_dir(tmp_path, 2, "vae") == tmp_path
    assert replicate_dir(tmp_path, 0, "vae") == tmp_path / "seed0"


def test_the_command_lines_seeds_reach_the_study_and_bad_ones_are_one_line(tmp_path, monkeypatch, capsys):
    import latentprior.studies.translation as translation
    from latentprior import cli

    seen = []
    monkeypatch.setattr(translation, "run_conditional", lambda task, out, **kw: seen.append(kw) or {})
    argv = ["experiment", "conditional", str(TASKS / "mnist_skeleton_cpu.yaml"), "--out", str(tmp_path / "s")]
    assert cli.main([*argv, "--seeds", "2,0"]) == 0 and cli.main(argv) == 0
    assert seen[0]["seeds"] == (2, 0) and "seeds" not in seen[1]  # without --seeds: the file's list, if any
    capsys.readouterr()
    assert cli.main([*argv, "--seeds", "0,0"]) == 2 and len(seen) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "argument --seeds: seeds must be distinct integers >= 0, got '0,0'" in err
