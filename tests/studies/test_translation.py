"""The Table 2 study (image-to-image translation): tables, grids, reuse of finished runs, the shipped task files."""

from __future__ import annotations

import pytest
from torch import nn

from tests.builders import PoolFeatures

DIM, SIDE = 4, 8


def test_the_experiment_writes_the_table_and_the_grid_and_reuses_its_runs(tmp_path, shared_dir, monkeypatch):
    if shared_dir is None:
        pytest.skip("../shared is absent: no AlexNet trunk for LPIPS")
    import latentprior.evaluation.registry as registry
    from latentprior.studies.translation import run_conditional, task_from_dict

    monkeypatch.setattr(registry, "make_feature_extractor", lambda device: PoolFeatures())
    run = {"data": {"name": "digits", "condition": "downsample7"}, "net": {"arch": "unet", "width": 0.125},
           "prior": {"layers": 2, "hidden": 16, "cond_embed": 8}, "model": {"latent_dim": DIM},
           "objective": {"kind": "cvae"}, "train": {"epochs": 0.2, "batch_size": 100, "progress": False}}
    task = task_from_dict({"run": run, "original": {"prior.kind": "normal", "objective.beta": 1.0},
                           "proposed": {"prior.kind": "realnvp"}, "eval": {"n": 20, "lpips_pairs": 6},
                           "grid": {"conditions": 3, "samples": 2}})
    out = run_conditional(task, tmp_path, weights_dir=shared_dir / "weights", cache_dir=tmp_path / "cache",
                          progress=False)
    rows = {r["model"]: r for r in out["table"]}
    assert set(rows) == {"original", "proposed"} and rows["original"]["beta"] == 1.0
    for r in rows.values():
        assert r["fid"] > 0 and 0 < r["recon_mse"] < 1 and r["lpips_diversity"] > 0
    assert "| original | normal |" in (tmp_path / "table.md").read_text()
    from PIL import Image

    # 3 rows of (condition, image, 2 + 2 samples), 28 px cells with 2 px padding, enlarged twice
    assert Image.open(out["grid"]).size == (2 * (6 * 30 + 2), 2 * (3 * 30 + 2))
    stamp = (tmp_path / "proposed" / "eval" / "cond_fid.json").stat().st_mtime_ns
    run_conditional(task, tmp_path, weights_dir=shared_dir / "weights", progress=False)
    assert (tmp_path / "proposed" / "eval" / "cond_fid.json").stat().st_mtime_ns == stamp
    # the unconditional sample metrics refuse a conditional run before any work, in one line
    from latentprior.config import EvalConfig
    from latentprior.evaluation import evaluate_run
    from latentprior.models.autoencoder import ConditionRequired

    with pytest.raises(ConditionRequired, match="use the metrics cond_lpips, cond_z_share, cond_fid"):
        evaluate_run(tmp_path / "proposed", EvalConfig(metrics=("fid",), n=10), progress=False)


def test_the_shipped_task_files_load_and_the_deepfashion_one_says_why_it_cannot(tmp_path, capsys):
    from pathlib import Path

    from latentprior.cli import main
    from latentprior.config import ConfigError, read_yaml
    from latentprior.evaluation.registry import NotConditional, check_condition
    from latentprior.studies.translation import load_task, task_from_dict

    folder = Path(__file__).resolve().parents[2] / "configs" / "conditional"
    for path in sorted(folder.glob("*_cpu*.yaml")):  # the CPU tasks and their 10x-budget twins
        task = load_task(path)
        assert task.configs["original"].objective.beta == 1.0 and task.configs["proposed"].objective.beta == 0.0
        assert task.configs["proposed"].prior.kind == "realnvp" and task.configs["original"].prior.kind == "normal"
    with pytest.raises(ConfigError, match="data.name: 'deepfashion' is not valid"):
        load_task(folder / "deepfashion_vunet.yaml")
    with pytest.raises(ConfigError, match="'eval' must map EvalConfig fields"):
        task_from_dict(read_yaml(path, "task") | {"eval": [1]}, str(path))
    bad = tmp_path / "bad.yaml"
    bad.write_text("run: {data: {name: mnist}}\n")
    assert main(["experiment", "conditional", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "run.data.condition must name a condition" in err[0]
    with pytest.raises(NotConditional):
        check_condition("cond_fid", nn.Linear(1, 1))


