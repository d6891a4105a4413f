"""`latentprior eval` says how long its feature pass will take before starting it, and refuses a sample count
the test set cannot supply, with the rule sweeps apply (EvalConfig.check_test_set)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from latentprior import cli
from latentprior.config import ConfigError, EvalConfig
from latentprior.evaluation import estimate, evaluate_run
from latentprior.evaluation import runner as runner_mod
from latentprior.sweeps.checks import check_sample_counts
from latentprior.sweeps.grid import sweep_from_dict

ROOT = Path(__file__).resolve().parents[2]
PER_IMAGE = 0.004  # seconds the stand-in network takes per image


class _SlowExtractor:
    """A 16-d stand-in for the Inception network that costs PER_IMAGE seconds per image."""

    def __call__(self, images):
        time.sleep(PER_IMAGE * images.shape[0])
        return torch.nn.functional.adaptive_avg_pool2d(images.float() / 255, 4).flatten(1)

    def protocol(self):
        return {"network": "slow-test-features", "weights_sha1": "1" * 40, "feature_dim": 16}


class _Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def sample(self, n, generator=None):
        return torch.rand(n, 1, 28, 28, generator=generator)


@pytest.fixture
def stub_eval(tmp_path, monkeypatch):
    import latentprior.models.load as load

    cfg = SimpleNamespace(data=SimpleNamespace(name="digits", dir=None, verify=True))
    monkeypatch.setattr(load, "load_run", lambda run_dir, device=None: (_Model(), cfg))
    monkeypatch.setattr(runner_mod, "make_feature_extractor", lambda device: _SlowExtractor())
    monkeypatch.setenv("LATENTPRIOR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(estimate, "ANNOUNCE_ABOVE_S", 0.0)
    (tmp_path / "run").mkdir()
    return tmp_path / "run"


def test_the_probe_times_the_network_on_this_machine():
    per_image = estimate.seconds_per_image(_SlowExtractor(), torch.zeros(20, 1, 28, 28, dtype=torch.uint8))
    assert PER_IMAGE <= per_image < 3 * PER_IMAGE
    seconds, line = estimate.estimate_message(0.05, 2000, 2000)
    assert seconds == pytest.approx(200) and line.startswith("eval: about 3 min for the features of 2000 samples "
                                                             "and 2000 reference images on this machine")


def test_eval_announces_its_estimate_before_the_pass(stub_eval, capsys):
    evaluate_run(stub_eval, EvalConfig(metrics=("fid",), n=200), progress=True)
    err = capsys.readouterr().err
    first = next(line for line in err.splitlines() if line.startswith("eval: about"))
    assert "200 samples and 200 reference images" in first
    assert err.index("eval: about") < err.index("reference features")  # said before the pass, not after
    evaluate_run(stub_eval, EvalConfig(metrics=("fid",), n=200), progress=True)
    assert "200 samples (reference features cached)" in capsys.readouterr().err


@pytest.mark.parametrize("ev, words", [(EvalConfig(n=400), "eval.n = 400 exceeds the digits test set (297 images)"),
                                       (EvalConfig(n=100, n_ref=300), "eval.n_ref = 300 exceeds the digits test set")])
def test_eval_and_sweeps_refuse_counts_the_test_set_cannot_supply(stub_eval, ev, words):
    with pytest.raises(ConfigError) as from_eval:
        evaluate_run(stub_eval, ev)
    assert words in str(from_eval.value) and not (stub_eval / "eval").exists()
    spec = sweep_from_dict({"name": "s", "base": {"data": {"name": "digits"}}, "grid": {"objective.beta": [0]},
                            "eval": {"metrics": list(ev.metrics), "n": ev.n, "n_ref": ev.n_ref}}, ROOT / "configs")
    from latentprior.sweeps.grid import expand

    with pytest.raises(ConfigError) as from_sweep:
        check_sample_counts(spec.eval, expand(spec, {}))
    assert str(from_sweep.value) == str(from_eval.value)  # one rule, one message


def test_cli_eval_refusal_is_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(ROOT / "tests" / "fixtures" / "run_0_1_0", run)
    assert cli.main(["eval", str(run), "--metrics", "nll", "--n", "400", "--nll-k", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: eval.n = 400 exceeds the digits test set (297 images)") and "\n" not in err
