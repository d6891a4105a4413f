"""Ex-post priors fitted into a finished run (``train-prior RUN --prior KIND``): stored, reloaded, used in place of
the run's own prior, and never touching the autoencoder."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from sklearn.mixture import GaussianMixture

from latentprior.cli import main
from latentprior.config import config_from_dict, expost_config
from latentprior.data import load_dataset
from latentprior.errors import UserError
from latentprior.models.expost import NotFittedHere, encode_images, load_run_prior, use_run_prior
from latentprior.models.load import load_run
from latentprior.priors import MixturePrior, TwoStageVAE
from latentprior.rundir import RunDir, read_eval_record, write_eval_record
from latentprior.rundir.prior_checkpoints import load_prior_checkpoint
from latentprior.training import train
from latentprior.training.expost import fit_run_prior


def _cfg(epochs: float = 0.4, **prior):
    # digits: 1500 training images -> 15 steps per epoch at batch 100: 6 joint + 3 prior-only steps
    return config_from_dict({
        "data": {"name": "digits"}, "net": {"width": 0.0625},
        "prior": {"kind": "realnvp", "layers": 2, "hidden": 16, **prior}, "model": {"latent_dim": 4},
        "objective": {"kind": "vae", "beta": 0.0, "lr": 1e-3},
        "train": {"epochs": epochs, "prior_epochs": 0.2, "batch_size": 100, "log_every": 1, "checkpoint_every": 2,
                  "progress": False, "device": "cpu"}})


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("expost") / "run"
    train(_cfg(), path)
    return path


def _test_latents(path) -> torch.Tensor:
    model, _ = load_run(path, device="cpu")
    return encode_images(model, load_dataset("digits", "test").images, "mean", seed=0)


def _snapshot(path) -> dict[str, str]:
    """SHA-256 of every file of the run except the fitted priors' folder (and the lock, held while writing)."""
    rd = RunDir(path)
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.rglob("*"))
            if p.is_file() and rd.priors not in p.parents and p != rd.lock}


def test_stored_ex_post_gmm_reloads_to_scikit_learns_log_densities(run_dir) -> None:
    cfg = expost_config("gmm", ["prior.components=3", "prior.seed=5"])
    fit_run_prior(run_dir, cfg, "gmm3", device="cpu")
    model, _ = load_run(run_dir, device="cpu")
    prior = load_run_prior(run_dir, "gmm3", model)
    assert isinstance(prior, MixturePrior) and prior.components == 3 and not prior.training
    # the reference: scikit-learn's EM on the same codes (posterior means of the training set, RAE's recipe)
    z_train = encode_images(model, load_dataset("digits", "train").images, "mean", seed=0)
    reference = GaussianMixture(3, covariance_type="full", random_state=5).fit(z_train.double().numpy())
    z_test = _test_latents(run_dir)
    with torch.no_grad():
        ours = prior.log_prob(z_test).double().numpy()
    np.testing.assert_allclose(ours, reference.score_samples(z_test.double().numpy()), rtol=1e-4, atol=1e-3)
    # and a second load gives the same densities to the bit
    again = load_run_prior(run_dir, "gmm3", model)
    with torch.no_grad():
        assert torch.equal(again.log_prob(z_test), prior.log_prob(z_test))
    ckpt = load_prior_checkpoint(RunDir(run_dir).prior("gmm3"))
    assert ckpt["config"] == cfg and ckpt["fit"]["latents"] == "mean" and ckpt["fit"]["n_latents"] == 1500


def test_train_prior_leaves_the_autoencoder_and_the_run_files_unchanged(run_dir, capsys) -> None:
    before_files = _snapshot(run_dir)
    before_state = {k: v.clone() for k, v in load_run(run_dir, device="cpu")[0].state_dict().items()}
    code = main(["train-prior", str(run_dir), "--prior", "two_stage", "--name", "second", "--device", "cpu",
                 "--set", "prior.epochs=2", "--set", "prior.hidden=8"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["name"] == "second" and summary["kind"] == "two_stage"
    assert _snapshot(run_dir) == before_files  # checkpoints, their index and digests, config, metrics: same bytes
    after = load_run(run_dir, device="cpu")[0].state_dict()
    assert after.keys() == before_state.keys() and all(torch.equal(after[k], before_state[k]) for k in after)
    model = use_run_prior(load_run(run_dir, device="cpu")[0], run_dir, "second")
    assert isinstance(model.prior, TwoStageVAE)
    assert (RunDir(run_dir).prior("second").preview("samples")).stat().st_size > 0


def test_a_prior_of_the_same_name_is_refused_unless_replaced_and_then_its_records_go(run_dir) -> None:
    cfg = expost_config("realnvp", {"prior.layers": 2, "prior.hidden": 8, "prior.epochs": 1})
    fit_run_prior(run_dir, cfg, "flow", device="cpu")
    rd = RunDir(run_dir).prior("flow")
    write_eval_record(rd, "fid", {"value": 1.0})
    write_eval_record(rd, "fid", {"value": 2.0}, temperature=0.5)
    with pytest.raises(UserError, match="already holds a prior"):
        fit_run_prior(run_dir, cfg, "flow", device="cpu")
    assert read_eval_record(rd, "fid") == {"value": 1.0}
    fit_run_prior(run_dir, cfg, "flow", device="cpu", replace=True)
    assert read_eval_record(rd, "fid") is None and read_eval_record(rd, "fid", temperature=0.5) is None


def test_a_prior_fitted_on_an_earlier_checkpoint_is_refused(tmp_path) -> None:
    path = tmp_path / "run"
    train(_cfg(epochs=0.2), path)
    fit_run_prior(path, expost_config("gmm", ["prior.components=2"]), device="cpu")
    train(_cfg(epochs=0.4), path)  # the run trains on: its encoder, and so q(z), changes
    model, _ = load_run(path, device="cpu")
    with pytest.raises(NotFittedHere, match="fit it again"):
        load_run_prior(path, "gmm", model)


def test_train_prior_options_are_checked_before_the_run_is_read(tmp_path, capsys) -> None:
    assert main(["train-prior", str(tmp_path), "--prior", "gmm", "--set", "prior.epochs=3"]) == 2
    assert "prior.epochs does not apply" in capsys.readouterr().err
    assert main(["train-prior", str(tmp_path), "--epochs", "1", "--name", "x"]) == 2
    assert "only go with --prior" in capsys.readouterr().err
    assert main(["train-prior", str(tmp_path)]) == 2  # one of --epochs and --prior is required


def test_the_python_api_fits_and_evaluates_a_prior_in_place_of_the_runs_own(run_dir) -> None:
    import latentprior as lp

    lp.fit_run_prior(run_dir, lp.expost_config("gmm", ["prior.components=2"]), "api_gmm", device="cpu")
    records = lp.evaluate(run_dir, ["prior_nll"], prior="api_gmm", device="cpu", progress=False)
    # by hand: -log p(z) of the fitted mixture (not the run's RealNVP) at one posterior draw per test image
    model = lp.use_run_prior(lp.load(run_dir, device="cpu"), run_dir, "api_gmm")
    assert isinstance(model.prior, MixturePrior)
    z = encode_images(model, load_dataset("digits", "test").images, "sample", seed=0, batch_size=100)
    with torch.no_grad():
        expected = -model.prior.log_prob(z).double().mean().item()
    assert records["prior_nll"]["value"] == pytest.approx(expected, rel=1e-6)
    assert read_eval_record(RunDir(run_dir).prior("api_gmm"), "prior_nll")["prior"] == "api_gmm"
    assert read_eval_record(run_dir, "prior_nll") is None  # the run's own records are not touched
    with pytest.raises(UserError, match="pass the run directory"):
        lp.evaluate(model, ["prior_nll"], prior="api_gmm", reference="digits")
