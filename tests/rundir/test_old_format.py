"""A run directory written by latentprior 0.1.0, before the rundir package (tests/fixtures/run_0_1_0, made with
tests/fixtures/run_0_1_0.yaml on the digits data): it loads to the same numbers, samples, evaluates, reports and takes
more prior-only epochs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from latentprior.data import load_dataset
from latentprior.models.load import load_run
from latentprior.rundir import read_eval_record, read_metrics

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "run_0_1_0"
EXPECTED = json.loads(FIXTURE.with_name("run_0_1_0.expected.json").read_text())


@pytest.fixture
def old_run(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    return run


def _cli(*args):
    done = subprocess.run([sys.executable, "-m", "latentprior.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_old_run_loads_to_the_numbers_it_gave_when_it_was_written(old_run):
    model, cfg = load_run(old_run, device="cpu")
    s = model.sample(8, generator=torch.Generator().manual_seed(0)).double()
    assert s.sum().item() == pytest.approx(EXPECTED["samples_seed0_n8_sum"], rel=1e-6)
    assert s.pow(2).sum().item() == pytest.approx(EXPECTED["samples_seed0_n8_sq"], rel=1e-6)
    mean, logvar = model.encode(load_dataset("digits", "test").batch(torch.arange(16)))
    assert mean.double().sum().item() == pytest.approx(EXPECTED["encode_digits_test16_mean_sum"], abs=1e-5)
    assert logvar.double().sum().item() == pytest.approx(EXPECTED["encode_digits_test16_logvar_sum"], rel=1e-6)
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
    assert model.prior.log_prob(z).tolist() == pytest.approx(EXPECTED["prior_log_prob_seed1"], rel=1e-6)
    assert cfg.data.name == "digits" and read_metrics(old_run)[-1]["step"] == 45


@pytest.mark.slow
def test_the_old_run_samples_evaluates_reports_and_trains_its_prior_through_the_command(old_run, tmp_path):
    _cli("sample", old_run, "--out", tmp_path / "s.png", "--n", 16)
    assert (tmp_path / "s.png").stat().st_size > 0
    before = read_eval_record(old_run, "nll")["value"]
    _cli("eval", old_run, "--metrics", "nll", "--n", "50", "--nll-k", "4")
    assert read_eval_record(old_run, "nll")["value"] == pytest.approx(before, rel=1e-6)
    assert _cli("report", old_run, "--out", tmp_path / "report")["runs"] == 1
    assert _cli("train-prior", old_run, "--epochs", "1")["step"] == 45 + 15
