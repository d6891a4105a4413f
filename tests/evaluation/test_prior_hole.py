"""recon_fid and prior_nll (evaluation/prior_hole.py), sampling temperature and fitted priors through evaluate_run and
the CLI: each value recomputed here by hand, with a cheap deterministic stand-in for the Inception network."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from latentprior.cli import main
from latentprior.config import EvalConfig, config_from_dict, expost_config
from latentprior.data import load_dataset
from latentprior.errors import UserError
from latentprior.evaluation import runner as runner_mod
from latentprior.models.expost import use_run_prior
from latentprior.models.load import load_run
from latentprior.rundir import RunDir, read_eval_record
from latentprior.training import train
from latentprior.training.expost import fit_run_prior


class _CheapExtractor:
    """4x4 average-pooled 8-bit pixels (16-d), the same for uint8 and float inputs (floats are quantised first)."""

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255.0 if images.dtype == torch.uint8 else (images.clamp(0, 1) * 255).round() / 255
        return F.adaptive_avg_pool2d(x, 4).flatten(1) + 0.01 * x.flatten(1)[:, :16]

    def protocol(self) -> dict:
        return {"network": "cheap-test-features", "weights_sha1": "0" * 40, "feature_dim": 16, "resize": "none"}


def _fid_by_hand(a: np.ndarray, b: np.ndarray) -> float:
    """The Fréchet distance of two (N, F) feature sets, written out with scipy's matrix square root."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("hole") / "run"
    train(config_from_dict({
        "data": {"name": "digits"}, "net": {"width": 0.0625},
        "prior": {"kind": "realnvp", "layers": 2, "hidden": 16}, "model": {"latent_dim": 4},
        "objective": {"kind": "vae", "beta": 1.0, "lr": 1e-3},  # at β = 1 q(z|x) has a real spread to draw from
        "train": {"epochs": 0.4, "prior_epochs": 0.2, "batch_size": 100, "checkpoint_every": 100,
                  "progress": False, "device": "cpu"}}), path)
    fit_run_prior(path, expost_config("gmm", ["prior.components=2"]), device="cpu")
    return path


@pytest.fixture
def cheap(monkeypatch, tmp_path):
    monkeypatch.setattr(runner_mod, "make_feature_extractor", lambda device: _CheapExtractor())
    monkeypatch.setenv("LATENTPRIOR_CACHE_DIR", str(tmp_path / "cache"))


def _evaluate(run_dir, **kw):
    prior = kw.pop("prior", None)
    ev = EvalConfig(**{"n": 120, "n_ref": 150, "batch_size": 500, **kw})
    return runner_mod.evaluate_run(run_dir, ev, device="cpu", progress=False, prior=prior)


def test_recon_fid_is_the_fid_of_the_reconstructions_against_the_samples_reference(run_dir, cheap) -> None:
    rec = _evaluate(run_dir, metrics=("recon_fid", "fid"))
    model, _ = load_run(run_dir, device="cpu")
    test = load_dataset("digits", "test").images
    with torch.no_grad():
        mean, _ = model.encode(test[:120].float() / 255.0)  # the first n test images, through the posterior mean
        recon = model.decode(mean).clamp(0, 1)
    extractor = _CheapExtractor()
    by_hand = _fid_by_hand(extractor(test[:150]).numpy().astype(np.float64),
                           extractor(recon).numpy().astype(np.float64))
    assert rec["recon_fid"]["value"] == pytest.approx(by_hand, rel=1e-6, abs=1e-9)
    assert rec["recon_fid"]["protocol"]["n_ref"] == rec["fid"]["protocol"]["n_ref"] == 150
    assert rec["recon_fid"]["value"] != pytest.approx(rec["fid"]["value"])  # samples are another set
    assert read_eval_record(run_dir, "recon_fid")["value"] == rec["recon_fid"]["value"]


def test_prior_nll_is_minus_log_p_of_one_posterior_draw_per_test_image(run_dir, cheap) -> None:
    model, _ = load_run(run_dir, device="cpu")
    test = load_dataset("digits", "test").images
    for prior in (None, "gmm"):
        rec = _evaluate(run_dir, metrics=("prior_nll",), seed=7, prior=prior)["prior_nll"]
        use_run_prior(model, run_dir, prior)
        with torch.no_grad():
            mean, logvar = model.encode(test.float() / 255.0)
            eps = torch.randn(mean.shape, generator=torch.Generator().manual_seed(7))
            nll = -model.prior.log_prob(mean + torch.exp(0.5 * logvar) * eps).double()
        assert rec["value"] == pytest.approx(nll.mean().item(), rel=1e-6)
        assert rec["per_dim"] == pytest.approx(nll.mean().item() / 4, rel=1e-6)
        assert rec["protocol"]["n_test"] == len(test) and rec["protocol"]["prior"] == (prior or "the run's own")
    gmm = read_eval_record(RunDir(run_dir).prior("gmm"), "prior_nll")
    own = read_eval_record(run_dir, "prior_nll")
    assert gmm["prior"] == "gmm" and gmm["value"] != own["value"]


def test_temperature_is_recorded_apart_and_changes_the_samples(run_dir, cheap) -> None:
    one = _evaluate(run_dir, metrics=("fid", "pr"))
    cold = _evaluate(run_dir, metrics=("fid", "pr"), temperature=0.5)
    assert one["fid"]["protocol"]["temperature"] == 1.0 and cold["fid"]["protocol"]["temperature"] == 0.5
    assert cold["fid"]["value"] != pytest.approx(one["fid"]["value"])
    assert read_eval_record(run_dir, "fid", temperature=0.5)["value"] == cold["fid"]["value"]
    assert read_eval_record(run_dir, "fid")["value"] == one["fid"]["value"]  # the prior's own record stays
    assert (RunDir(run_dir).eval / "temperature=0.5" / "pr.json").is_file()
    with pytest.raises(UserError, match="do not read"):
        _evaluate(run_dir, metrics=("fid", "recon_fid"), temperature=0.5)


def test_sample_temperature_and_prior_change_the_images(run_dir, tmp_path, capsys) -> None:
    from PIL import Image

    def grid(*extra: str) -> np.ndarray:
        out = tmp_path / f"s{len(list(tmp_path.iterdir()))}.png"
        assert main(["sample", str(run_dir), "--n", "16", "--out", str(out), *extra]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["temperature"] == (float(extra[extra.index("--temperature") + 1])
                                          if "--temperature" in extra else 1.0)
        return np.asarray(Image.open(out))

    plain = grid()
    assert np.array_equal(plain, grid("--temperature", "1"))
    assert not np.array_equal(plain, grid("--temperature", "0.5"))
    assert not np.array_equal(plain, grid("--prior", "gmm"))
    assert main(["sample", str(run_dir), "--out", str(tmp_path / "x.png"), "--prior", "absent"]) == 2
    assert "no prior fitted" in capsys.readouterr().err
