"""``latentprior experiment priors`` end to end on a tiny digits study, with a cheap stand-in for the Inception
network: every table value is the eval record's, the β = 0 runs share their autoencoder, a rerun reuses everything."""

from __future__ import annotations

import csv
import json
import math
import statistics

import pytest
import torch
import torch.nn.functional as F
import yaml

from latentprior.config import ConfigError
from latentprior.evaluation import runner as runner_mod
from latentprior.rundir import RunDir, read_eval_record
from latentprior.rundir.prior_checkpoints import load_prior_checkpoint
from latentprior.studies.priors import Cell, load_prior_study, prior_study_from_dict, run_name, run_priors
from tests.builders import ROOT

STUDY = {
    "name": "tiny",
    "base": {"data": {"name": "digits"}, "net": {"width": 0.0625},
             "prior": {"kind": "realnvp", "layers": 2, "hidden": 16, "init_rng": "own"}, "model": {"latent_dim": 4},
             "objective": {"kind": "vae", "lr": 1e-3},
             "train": {"epochs": 0.4, "prior_epochs": 0.2, "batch_size": 100, "checkpoint_every": 100,
                       "progress": False, "device": "cpu"}},
    "betas": [0, 1], "seeds": [0, 1],
    "joint": {"flow": {"label": "RealNVP (joint)"}, "mix": {"prior.kind": "gmm", "prior.components": 2}},
    "autoencoder": "flow",
    "expost": {"gmm": {"label": "GMM (ex post)", "kind": "gmm", "components": 2},
               "nvp": {"kind": "realnvp", "layers": 2, "hidden": 8, "epochs": 1}},
    "eval": {"n": 60, "n_ref": 80, "batch_size": 500},
    "temperatures": {"values": [0.5], "priors": ["flow", "gmm"], "betas": [0]},
    "grid_samples": 4,
}


class _CheapExtractor:
    calls = 0

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        _CheapExtractor.calls += 1
        x = images.float() / 255.0 if images.dtype == torch.uint8 else (images.clamp(0, 1) * 255).round() / 255
        return F.adaptive_avg_pool2d(x, 4).flatten(1) + 0.01 * x.flatten(1)[:, :16]

    def protocol(self) -> dict:
        return {"network": "cheap-test-features", "weights_sha1": "0" * 40, "feature_dim": 16, "resize": "none"}


def _read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _num(text: str) -> float:
    return math.nan if text == "" else float(text)


@pytest.fixture(scope="module")
def study_out(tmp_path_factory):
    root = tmp_path_factory.mktemp("priorstudy")
    (root / "study.yaml").write_text(yaml.safe_dump(STUDY))
    mp = pytest.MonkeyPatch()
    mp.setattr(runner_mod, "make_feature_extractor", lambda device: _CheapExtractor())
    mp.setenv("LATENTPRIOR_CACHE_DIR", str(root / "cache"))
    try:
        study = load_prior_study(root / "study.yaml")
        result = run_priors(study, root / "out", device="cpu", progress=False)
        calls = _CheapExtractor.calls
        again = run_priors(study, root / "out", device="cpu", progress=False)  # everything reused
        assert _CheapExtractor.calls - calls <= 2  # only the grids' reference read (cached) may touch features
    finally:
        mp.undo()
    return study, root / "out", result, again


@pytest.mark.slow
def test_the_table_rows_are_the_eval_records(study_out) -> None:
    study, out, result, again = study_out
    rows = _read_csv(out / "tiny" / "priors_runs_n60.csv")
    assert len(rows) == 2 * 2 * 4  # β x seeds x (2 joint + 2 ex post)
    for row in rows:
        cell, name = Cell(int(row["latent_dim"]), float(row["beta"]), int(row["seed"])), row["prior"]
        ae = RunDir(out / "runs" / run_name(study.autoencoder, cell))
        own = RunDir(out / "runs" / run_name(name, cell)) if name in study.joint else ae.prior(name)
        recon_run = own if name in study.joint else ae
        assert _num(row["fid"]) == read_eval_record(own, "fid")["value"]
        assert _num(row["recon_fid"]) == read_eval_record(recon_run, "recon_fid")["value"]
        assert _num(row["fid_ratio"]) == pytest.approx(_num(row["fid"]) / _num(row["recon_fid"]), rel=1e-12)
        assert _num(row["precision"]) == read_eval_record(own, "pr")["precision"]
        assert _num(row["recall"]) == read_eval_record(own, "pr")["recall"]
        assert _num(row["prior_nll"]) == read_eval_record(own, "prior_nll")["value"]
        if name in study.expost:
            assert _num(row["prior_s"]) == load_prior_checkpoint(own)["fit"]["seconds"]
    summary = {(r["prior"], float(r["beta"])): r for r in _read_csv(out / "tiny" / "priors_n60.csv")}
    for (name, beta), r in summary.items():
        fids = [_num(x["fid"]) for x in rows if x["prior"] == name and float(x["beta"]) == beta]
        assert _num(r["fid_mean"]) == pytest.approx(statistics.fmean(fids), rel=1e-12)
        assert _num(r["fid_std"]) == pytest.approx(statistics.stdev(fids), rel=1e-12)
    assert result["rows"] == again["rows"]
    assert (out / "tiny" / "priors_n60.md").read_text().count("\n| ") == 1 + 8  # the header and one row per prior and β
    for f in ("fid_vs_beta.png", "fid_vs_temperature.png", "samples_dim4_beta0.png", "temperature_gmm_dim4_beta0.png"):
        assert (out / "tiny" / f).stat().st_size > 0


@pytest.mark.slow
def test_temperature_rows_are_the_tempered_records(study_out) -> None:
    study, out, _, _ = study_out
    rows = _read_csv(out / "tiny" / "temperature_runs_n60.csv")
    assert {(r["prior"], float(r["temperature"])) for r in rows} == {(p, t) for p in ("flow", "gmm") for t in (.5, 1)}
    for r in rows:
        cell = Cell(int(r["latent_dim"]), float(r["beta"]), int(r["seed"]))
        ae = RunDir(out / "runs" / run_name("flow", cell))
        where = ae if r["prior"] == "flow" else ae.prior(r["prior"])
        rec = read_eval_record(where, "fid", temperature=float(r["temperature"]))
        assert _num(r["fid"]) == rec["value"] and rec["protocol"]["temperature"] == float(r["temperature"])


@pytest.mark.slow
def test_the_effects_compare_the_per_seed_fids(study_out) -> None:
    _, out, _, _ = study_out
    rows = _read_csv(out / "tiny" / "priors_runs_n60.csv")
    records = json.loads((out / "tiny" / "priors_effects_n60.json").read_text())
    # per β: every other prior against the autoencoder entry "flow", plus the best two when "flow" is not among them
    assert {(r["b"]["label"], r["claim"].split("(")[-1]) for r in records} >= {("RealNVP (joint)", "latent 4, β = 0)"),
                                                                               ("RealNVP (joint)", "latent 4, β = 1)")}
    for r in records:
        for side in ("a", "b"):
            label = r[side]["label"]
            beta = 0.0 if "β = 0)" in r["claim"] else 1.0
            fids = [_num(x["fid"]) for x in rows if x["label"] == label and float(x["beta"]) == beta]
            assert r[side]["values"] == fids
    assert "same autoencoder" in (out / "tiny" / "priors_n60.md").read_text()  # two joint entries: the column


@pytest.mark.slow
def test_beta_zero_joint_runs_share_the_autoencoder(study_out) -> None:
    _, out, result, _ = study_out
    same = {(r["prior"], r["beta"]): r["same_autoencoder"] for r in result["rows"]}
    assert same[("mix", 0.0)] is True and same[("mix", 1.0)] is None and same[("flow", 0.0)] is None
    recon = {r["prior"]: r["recon_fid_mean"] for r in result["rows"] if r["beta"] == 0.0}
    assert recon["mix"] == recon["flow"]  # one autoencoder, one reconstruction FID


@pytest.mark.parametrize(("edit", "message"), [
    ({"joint": {}}, "at least one prior"),
    ({"autoencoder": "nvp"}, "not one of the joint entries"),
    ({"expost": {"flow": {"kind": "gmm"}}}, "name both a joint and an ex-post prior"),
    ({"expost": {"g": {"kind": "gmm", "epochs": 3}}}, "prior.epochs does not apply"),
    ({"eval": {"metrics": ["fid"]}}, "fixed by the study"),
    ({"temperatures": {"values": [0.5], "priors": ["other"]}}, "not priors of the study"),
    ({"seeds": []}, "non-empty list"),
    ({"joint": {"../x": {}}}, "not a plain name"),
    ({"joint": {"flow": {"prior.kind": "gmm", "prior.layerz": 3}}}, "layerz"),
    ({"grid_samples": 0}, "grid_samples"),
    ({"name": "../tables"}, "not a plain name"),
    ({"expost": {"g": {"kind": "gmm", "betas": "all"}}}, "non-empty list"),
])
def test_a_bad_study_file_is_refused_in_one_line(tmp_path, edit, message) -> None:
    with pytest.raises((ConfigError, ValueError), match=message) as e:
        prior_study_from_dict(STUDY | edit, tmp_path)
    assert "\n" not in str(e.value)


STUDY_FILES = sorted((ROOT / "configs" / "priors").glob("*.yaml"))


@pytest.mark.parametrize("path", STUDY_FILES, ids=lambda p: p.name)
def test_every_shipped_study_file_loads(path) -> None:
    study = load_prior_study(path)
    assert study.cells() and study.name == yaml.safe_load(path.read_text())["name"]


def test_study_files_of_one_dataset_and_net_agree_on_the_runs_they_share() -> None:
    """The shipped files of one dataset and net run into one folder and reuse each other's runs and fits: a run or
    fit of the same name must have the same config in every file, or a rerun would meet a run it did not make."""
    runs: dict[tuple, dict] = {}
    fits: dict[tuple, object] = {}
    for path in STUDY_FILES:
        study = load_prior_study(path)
        group = (study.base.data.name, study.base.net.arch)
        for cell in study.cells():
            for name in study.joint:
                key = (*group, run_name(name, cell))
                cfg = study.config(name, cell)
                assert runs.setdefault(key, cfg) == cfg, f"{path.name}: {key[-1]} differs from another file's"
        for name, entry in study.expost.items():
            key = (*group, study.autoencoder, name)
            assert fits.setdefault(key, entry.config) == entry.config, f"{path.name}: ex-post {name} differs"
    assert len({k[:2] for k in runs}) >= 3  # MNIST infogan, MNIST conv4, Fashion-MNIST
