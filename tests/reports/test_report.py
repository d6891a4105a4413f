"""Reports: every number in the tables equals the runs' eval JSON; plots and the HTML page link what exists.

The sweep folders here are written by hand (sweep.json, eval files, sample PNGs), so nothing trains.
"""

from __future__ import annotations

import csv
import json
import math
import random
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from latentprior.reports import collect_runs, metric_values, write_report

MODELS = {"vae_flow_fixed_gamma": "VAE + flow prior (fixed γ)", "aae_adv": "AAE + adversarial prior"}
PNG_1x1 = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                        "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082")


def make_sweep(root: Path, betas=(0.0, 0.1, 1.0), dims=(64,), seeds=(0, 1, 2), failed=("aae_adv", 1.0, 64, 2),
               rng=None) -> dict[str, dict]:
    """A sweep folder with random eval values; returns {run name: {"fid": .., "pr": {...}}} as written."""
    rng = rng or random.Random(0)
    runs, written = {}, {}
    for model in MODELS:
        for dim in dims:
            for beta in betas:
                for seed in seeds:
                    name = f"mnist-{model}-dim{dim}-beta{beta:g}-seed{seed}"
                    labels = {"dataset": "mnist", "model": model, "model_label": MODELS[model], "beta": beta,
                              "latent_dim": dim, "seed": seed}
                    is_failed = (model, beta, dim, seed) == failed
                    runs[name] = {"status": "failed" if is_failed else "done", "attempts": 1, "labels": labels,
                                  "run_dir": f"runs/{name}"}
                    run_dir = root / "runs" / name
                    (run_dir / "samples").mkdir(parents=True)
                    if is_failed:
                        continue
                    (run_dir / "samples" / "samples.png").write_bytes(PNG_1x1)
                    fid = rng.uniform(5, 80)
                    pr = {"precision": rng.random(), "recall": rng.random()}
                    (run_dir / "eval").mkdir()
                    (run_dir / "eval" / "fid.json").write_text(json.dumps({"value": fid, "protocol": {"n": 1000}}))
                    (run_dir / "eval" / "pr.json").write_text(json.dumps(  # the layout evaluate_run writes
                        {"metric": "pr", "value": pr, **pr, "elapsed_s": 3.5, "protocol": {"k": 3}}))
                    written[name] = {"fid": fid, "pr": pr}
                    runs[name]["result"] = {"name": name, "train_s": 60.0 * len(written), "wall_s": 90.0 * len(written),
                                            "train_total_s": 120.0 * len(written)}
    (root / "sweep.json").write_text(json.dumps({"sweep": {"name": "test_sweep"}, "runs": runs}))
    return written


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_report_numbers_equal_the_eval_json(tmp_path):
    written = make_sweep(tmp_path)
    result = write_report(tmp_path)
    out = Path(result["out"])
    assert result["runs"] == 18 and result["with_results"] == 17 and result["eval_n"] == [1000]

    per_run = {r["name"]: r for r in read_csv(out / "runs.csv")}
    assert set(per_run) == {p.name for p in (tmp_path / "runs").iterdir()}
    for name, vals in written.items():
        assert float(per_run[name]["fid"]) == vals["fid"]  # exact: CSV floats are written with repr
        assert float(per_run[name]["pr.precision"]) == vals["pr"]["precision"]
        assert float(per_run[name]["pr.recall"]) == vals["pr"]["recall"]
        assert per_run[name]["eval_n"] == "1000"
        result = json.loads((tmp_path / "sweep.json").read_text())["runs"][name]["result"]
        timings = tuple(float(per_run[name][f"{k}_min"]) for k in ("train_total", "train", "wall"))
        assert timings == (result["train_total_s"] / 60, result["train_s"] / 60, result["wall_s"] / 60)  # minutes
    failed = per_run["mnist-aae_adv-dim64-beta1-seed2"]
    assert failed["status"] == "failed" and failed["fid"] == ""

    summary = read_csv(out / "summary.csv")
    assert len(summary) == 6  # 2 models x 3 betas
    assert "model_label" not in summary[0] and {r["model"] for r in summary} == set(MODELS.values())  # one column
    name_of = {label: model for model, label in MODELS.items()}
    for row in summary:
        vals = [v["fid"] for name, v in written.items()
                if f"-{name_of[row['model']]}-" in name and f"-beta{float(row['beta']):g}-" in name]
        assert int(row["n"]) == len(vals)
        assert float(row["fid_mean"]) == pytest.approx(np.mean(vals), rel=1e-12)
        assert float(row["fid_std"]) == pytest.approx(np.std(vals, ddof=1), rel=1e-12)
    aae_b1 = next(r for r in summary if r["model"] == MODELS["aae_adv"] and float(r["beta"]) == 1.0)
    assert (aae_b1["n"], aae_b1["seeds"]) == ("2", "0 1")

    md = (out / "summary.md").read_text()
    first = next(r for r in summary if r["model"] == MODELS["vae_flow_fixed_gamma"] and float(r["beta"]) == 0.0)
    mean, std = float(first["fid_mean"]), float(first["fid_std"])
    places = max(0, 2 - math.floor(math.log10(abs(float(f"{mean:.3g}")))))  # 3 significant digits, std alike
    assert f"{float(f'{mean:.3g}'):.{places}f} ± {std:.{places}f}" in md


def _png(path: Path, size=(30, 30)) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 10, 10)).save(path)


def test_report_folder_is_self_contained_and_renders_after_a_move(tmp_path):
    make_sweep(tmp_path / "sweep", dims=(16, 64), betas=(0.0, 1.0), seeds=(0, 1), failed=None)
    run = tmp_path / "sweep" / "runs" / "mnist-aae_adv-dim16-beta0-seed0"
    _png(run / "samples" / "samples.png", (302, 302))
    _png(run / "samples" / "reconstructions.png", (242, 62))
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"step": 1, "phase": "joint", "autoencoder/loss": 3.0}, {"step": 2, "phase": "prior", "prior/loss": 1.0}]))
    (run / "config.yaml").write_text("train: {seed: 0}\n")
    result = write_report(tmp_path / "sweep", tmp_path / "rep")
    moved = tmp_path / "elsewhere" / "report"
    moved.parent.mkdir()
    Path(result["out"]).rename(moved)  # the runs stay where they are; the report must not need them
    shutil.rmtree(tmp_path / "sweep")
    page = moved / "index.html"
    text = page.read_text()
    srcs = re.findall(r"<img [^>]*src='([^']+)'", text)
    # 2 plots + 16 runs' samples + one run's reconstructions and loss curves
    assert len(srcs) == 2 + 16 + 2 and all((page.parent / s).is_file() for s in srcs), srcs
    hrefs = [h for h in re.findall(r"href='([^']+)'", text) if not h.startswith("file:")]
    assert not [h for h in hrefs if not (page.parent / h).is_file()]
    assert "runs/mnist-aae_adv-dim16-beta0-seed0/metrics.jsonl" in hrefs and \
        "runs/mnist-aae_adv-dim16-beta0-seed0/config.yaml" in hrefs
    # a 302 px grid is shown at its own size (no shrinking), a 30 px one at 10x, both as crisp pixels
    assert "samples.png' width='302' height='302'" in text and "samples.png' width='300' height='300'" in text
    assert "AAE + adversarial prior · β = 0 · seed 0 · latent dim 16" in text  # model label and β in the caption
    assert "fid: lower is better" in text


def test_plots_are_150_dpi_png_and_svg_with_the_sample_count(tmp_path):
    from PIL import Image

    make_sweep(tmp_path, dims=(16, 64), betas=(0.0, 1.0), seeds=(0, 1), failed=None)
    result = write_report(tmp_path)
    names = sorted(Path(p).name for p in result["plots"])
    assert names == ["fid_vs_beta_mnist.png", "fid_vs_latent_dim_mnist.png"]
    for p in map(Path, result["plots"]):
        with Image.open(p) as im:
            assert im.format == "PNG" and round(im.info["dpi"][0]) == 150
        svg = p.with_suffix(".svg").read_text()
        assert "n = 1000 samples" in svg and "2 seeds" in svg


def test_different_sample_counts_are_never_pooled(tmp_path):
    make_sweep(tmp_path, betas=(0.0, 1.0), seeds=(0, 1), failed=None)
    run = tmp_path / "runs" / "mnist-aae_adv-dim64-beta1-seed1" / "eval" / "fid.json"
    run.write_text(json.dumps({"value": 1000.0, "protocol": {"n": 50}}))
    result = write_report(tmp_path)
    summary = [r for r in read_csv(Path(result["out"]) / "summary.csv")
               if r["model"] == MODELS["aae_adv"] and float(r["beta"]) == 1.0]
    assert sorted((r["eval_n"], r["n"]) for r in summary) == [("1000", "1"), ("50", "1")]
    assert float(next(r for r in summary if r["eval_n"] == "50")["fid_mean"]) == 1000.0
    assert result["warnings"] == ["dataset=mnist, model=aae_adv, beta=1.0, latent_dim=64: evaluated on different "
                                  "sample counts (50, 1000); shown as separate rows, never averaged"]
    assert "never averaged" in Path(result["html"]).read_text()
    # one plot per sample count with two β values: the n = 50 runs have one β, so only n = 1000 is drawn
    assert [Path(p).name for p in result["plots"]] == ["fid_vs_beta_mnist_n1000.png"]


def _hand_run(run: Path, beta: float, fid: float) -> None:
    (run / "eval").mkdir(parents=True)
    cfg = {"data": {"name": "digits"}, "objective": {"kind": "vae", "beta": beta}, "prior": {"kind": "realnvp"},
           "model": {"latent_dim": 8, "learn_gamma": True}, "train": {"seed": 3}}
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    (run / "eval" / "fid.json").write_text(json.dumps({"value": fid}))


def test_report_without_sweep_json_reads_run_configs(tmp_path):
    _hand_run(tmp_path / "runs" / "a", 0.5, 12.5)
    (rec,) = collect_runs(tmp_path)
    assert rec.labels == {"dataset": "digits", "model": "vae_realnvp_learned_gamma",
                          "model_label": "vae_realnvp_learned_gamma", "beta": 0.5, "latent_dim": 8, "seed": 3}
    assert rec.metrics == {"fid": 12.5}
    result = write_report(tmp_path)
    assert result["plots"] == [] and read_csv(Path(result["out"]) / "runs.csv")[0]["fid"] == "12.5"


def test_report_of_a_plain_folder_of_runs_and_of_one_run(tmp_path):
    _hand_run(tmp_path / "a", 0.5, 12.5)
    _hand_run(tmp_path / "b", 1.0, 20.0)
    result = write_report(tmp_path)
    assert result["runs"] == 2
    diff = read_csv(Path(result["out"]) / "config_diff.csv")  # only the key that differs
    assert diff == [{"name": "a", "objective.beta": "0.5"}, {"name": "b", "objective.beta": "1.0"}]
    one = write_report(tmp_path / "b")
    assert (one["runs"], one["out"]) == (1, str(tmp_path / "b" / "report"))
    assert read_csv(Path(one["out"]) / "runs.csv")[0]["fid"] == "20.0"


def test_metric_values_reads_result_fields_only():
    assert metric_values("fid", {"value": 3.0, "n": 100, "protocol": {"x": 1}}) == {"fid": 3.0}
    assert metric_values("pr", {"value": {"precision": 0.5, "recall": 0.25}, "k": 3}) == \
        {"pr.precision": 0.5, "pr.recall": 0.25}
    assert metric_values("pr", {"precision": 0.5, "recall": 0.25, "nearest_k": 3}) == \
        {"pr.precision": 0.5, "pr.recall": 0.25}
    assert metric_values("kid", {"value": 0.01, "std": 0.002, "elapsed_s": 9.0}) == {"kid": 0.01, "kid.std": 0.002}
    assert metric_values("fid", {"value": math.nan}) == {}


def test_report_cli_errors_without_runs(tmp_path, capsys):
    from latentprior.cli import main

    assert main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err == \
        f"error: {tmp_path} holds no runs: no sweep.json, no config.yaml in it, in runs/*/ or in */\n"
