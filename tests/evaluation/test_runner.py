"""The sampling protocol, the metric registry and ``evaluate_run`` end to end.

A stub model stands in for a trained run, and a cheap deterministic feature function for the Inception
network, so every value here is recomputed independently in the test. LPIPS runs the real AlexNet on a few
64×64 images (skipped without ``../shared``).
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from latentprior.config import EvalConfig
from latentprior.data import load_dataset
from latentprior.errors import UserError
from latentprior.evaluation import (
    LPIPS,
    METRICS,
    EvalInputs,
    Metric,
    NLLUnavailable,
    UnknownMetricError,
    WeightsNotFound,
    check_metrics,
    frechet_distance,
    generated_images,
    precision_recall,
    preprocess,
)
from latentprior.evaluation import runner as runner_mod
from latentprior.evaluation.features import to_uint8
from latentprior.evaluation.inception import sha1_file
from latentprior.priors import StandardNormal
from latentprior.reports import metric_values


class _StubModel(nn.Module):
    """Tiny VAE on 1×28×28 images with the model API (encode, decode, log_px_given_z, sample, prior)."""

    def __init__(self, d: int = 3):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.enc = nn.Linear(28 * 28, 2 * d)
        self.dec = nn.Linear(d, 28 * 28)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
        self.prior = StandardNormal(d)
        self.gaussian_encoder = True

    def encode(self, x):
        mean, logvar = self.enc(x.flatten(1)).chunk(2, -1)
        return mean, logvar

    def decode(self, z):
        return torch.sigmoid(self.dec(z)).reshape(-1, 1, 28, 28)

    def log_px_given_z(self, x, g):
        return -0.5 * ((x - g).pow(2).flatten(1).sum(-1) / 0.1 + x[0].numel() * math.log(2 * math.pi * 0.1))

    @torch.no_grad()
    def sample(self, n, generator=None):
        return self.decode(self.prior.sample(n, generator=generator)).clamp(0, 1)


class _OneImageModel(_StubModel):
    """Always outputs the same image."""

    @torch.no_grad()
    def sample(self, n, generator=None):
        return self.decode(torch.zeros(1, 3)).expand(n, -1, -1, -1).clone()


class _CheapExtractor:
    """Deterministic stand-in for the Inception network: 4×4 average-pooled 8-bit pixels (16-d)."""

    calls = 0

    def __call__(self, images):
        _CheapExtractor.calls += 1
        x = images.float() / 255.0 if images.dtype == torch.uint8 else (images.clamp(0, 1) * 255).round() / 255
        return F.adaptive_avg_pool2d(x, 4).flatten(1) + 0.01 * x.flatten(1)[:, :16]

    def protocol(self):
        return {"network": "cheap-test-features", "weights_sha1": "0" * 40, "feature_dim": 16,
                "resize": "none", "input_range": [0, 1], "quantize_8bit": True}


def _use_model(monkeypatch, model) -> None:
    import latentprior.models.load as load

    cfg = SimpleNamespace(data=SimpleNamespace(name="digits", dir=None, verify=True))
    monkeypatch.setattr(load, "load_run", lambda run_dir, device=None: (model, cfg))


@pytest.fixture
def stub_run(tmp_path, monkeypatch):
    import latentprior.training as training

    def no_training(*a, **k):
        raise AssertionError("evaluation must never train")

    _use_model(monkeypatch, _StubModel().eval())
    monkeypatch.setattr(training, "train", no_training, raising=False)
    monkeypatch.setattr(runner_mod, "make_feature_extractor", lambda device: _CheapExtractor())
    monkeypatch.setenv("LATENTPRIOR_CACHE_DIR", str(tmp_path / "cache"))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    return run_dir


def _by_hand(model, n: int, seed: int) -> torch.Tensor:
    """The documented protocol, written out: chunks of 100, each from a generator seeded by (seed, start)."""
    def gen(start):
        return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, start]).generate_state(1)[0]))

    return torch.cat([model.sample(min(100, n - s), generator=gen(s)) for s in range(0, n, 100)])


# ------------------------------------------------------------------------------------------- sampling


def test_generated_set_depends_on_seed_and_n_only():
    model = _StubModel().eval()
    ref = _by_hand(model, 250, 7)
    for bs in (1, 7, 100, 250, 1000):
        batches = list(generated_images(model, 250, 7, bs))
        assert [b.shape[0] for b in batches[:-1]] == [bs] * (len(batches) - 1)
        assert torch.equal(torch.cat(batches), ref), bs
    assert not torch.equal(torch.cat(list(generated_images(model, 250, 8, 50))), ref)


def test_uint8_samples_reach_the_network_as_the_float_samples_do():
    # Saved uint8 samples (benchmarks/gpu_check.py --fid-from-samples) must give eval's features exactly.
    x = torch.cat([torch.rand(6, 1, 28, 28), torch.tensor([0.0, 1.0, 0.5 / 255, 1.5 / 255, -0.2, 1.3])
                   .reshape(6, 1, 1, 1).expand(6, 1, 28, 28)])
    assert torch.equal(preprocess(to_uint8(x)), preprocess(x))
    assert to_uint8(x).dtype == torch.uint8 and not torch.equal(preprocess(x), preprocess(x + 0.003))


# ------------------------------------------------------------------------------------------- registry


def test_unknown_metric_names_the_known_ones():
    with pytest.raises(UnknownMetricError) as e:
        check_metrics(["fid", "bogus"])
    assert str(e.value) == f"unknown metric(s) ['bogus']; known: {', '.join(METRICS)}"
    assert isinstance(e.value, UserError)
    with pytest.raises(UnknownMetricError, match="'is'"):  # no logits network is configured: not offered
        check_metrics(["is"])
    with pytest.raises(UnknownMetricError, match="no metric given"):
        check_metrics([" ", ""])
    assert check_metrics(" FID,pr , fid") == ("fid", "pr")  # a string is a comma list, never its letters
    assert check_metrics(("nll",)) == ("nll",)


def test_evaluate_run_refuses_before_loading_or_writing(stub_run, monkeypatch, tmp_path):
    with pytest.raises(UnknownMetricError, match="'bogus'"):
        runner_mod.evaluate_run(stub_run, EvalConfig(metrics=("fid", "bogus")))
    with pytest.raises(WeightsNotFound, match="alexnet_features_imagenet.pth"):
        runner_mod.evaluate_run(stub_run, EvalConfig(metrics=("fid", "lpips"), n=10), weights_dir=tmp_path)
    model = _StubModel()
    model.prior.has_density = False
    _use_model(monkeypatch, model)
    with pytest.raises(NLLUnavailable, match="density"):
        runner_mod.evaluate_run(stub_run, EvalConfig(metrics=("fid", "nll"), n=10))
    assert not (stub_run / "eval").exists()  # fid was not written either: checks come first


def test_a_metric_added_to_the_registry_is_computed_and_written(stub_run, monkeypatch):
    def mean_gap(x: EvalInputs) -> dict:  # reads the model and the data only
        fake = torch.cat(list(generated_images(x.model, x.eval.n, x.eval.seed, x.eval.batch_size)))
        real = x.test.batch(torch.arange(x.n_ref))
        return {"value": (fake.mean() - real.mean()).item(), "protocol": x.protocol}

    def counted(x: EvalInputs) -> dict:  # reads the shared feature pass
        return {"value": x.real.stats.n + x.fake.stats.n, "protocol": x.feature_protocol}

    monkeypatch.setitem(METRICS, "gap", Metric(mean_gap, "mean pixel gap"))
    monkeypatch.setitem(METRICS, "count", Metric(counted, "features seen", reads="statistics"))
    out = runner_mod.evaluate_run(stub_run, EvalConfig(metrics=("gap", "count"), n=40, batch_size=16),
                                  progress=False)
    real = load_dataset("digits", "test", None).images[:40].float() / 255
    expect = (_by_hand(_StubModel().eval(), 40, 0).mean() - real.mean()).item()
    assert json.loads((stub_run / "eval" / "gap.json").read_text())["value"] == pytest.approx(expect, rel=1e-6)
    assert json.loads((stub_run / "eval" / "count.json").read_text())["value"] == 80
    assert out["count"]["protocol"]["network"] == "cheap-test-features" and out["gap"]["metric"] == "gap"


# ------------------------------------------------------------------------------------------- end to end


def test_evaluate_run_values_are_the_stages_applied_to_the_same_features(stub_run):
    n, seed = 130, 3
    cfg = EvalConfig(metrics=("fid", "pr", "kid", "nll"), n=n, batch_size=40, nll_k=4, seed=seed)
    out = runner_mod.evaluate_run(stub_run, cfg, progress=False)
    assert list(out) == ["fid", "pr", "kid", "nll"]
    assert json.loads(json.dumps(out)) == out  # plain JSON types all through: one printable line
    for metric, record in out.items():
        assert json.loads((stub_run / "eval" / f"{metric}.json").read_text()) == record
    # Recomputed independently: images by hand, features in one call, moments by numpy.
    ext = _CheapExtractor()
    real = ext(load_dataset("digits", "test", None).images[:n]).double().numpy()
    fake = ext(_by_hand(_StubModel().eval(), n, seed)).double().numpy()
    fid = frechet_distance(real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False))
    assert out["fid"]["value"] == pytest.approx(fid, rel=1e-9) and fid > 1e-3
    pr = precision_recall(real, fake, k=3)
    assert out["pr"]["value"] == pr and out["pr"]["precision"] == pr["precision"]
    proto = out["fid"]["protocol"]
    assert (proto["n"], proto["n_ref"], proto["seed"], proto["split"], proto["dataset"]) == (n, n, seed, "test",
                                                                                            "digits")
    assert proto["network"] == "cheap-test-features" and out["kid"]["protocol"]["subset_size"] == n
    assert out["nll"]["protocol"]["k"] == 4 and out["nll"]["protocol"]["units"] == "nats per image"
    assert "n" not in out["nll"]["protocol"]  # the NLL reads test images only
    # A report reads the result fields the registry declares, and only those.
    assert metric_values("pr", out["pr"]) == {"pr.precision": pr["precision"], "pr.recall": pr["recall"]}
    assert metric_values("kid", out["kid"]) == {"kid": out["kid"]["value"]}  # one whole-set estimate: no std
    assert metric_values("nll", out["nll"]) == {"nll": out["nll"]["value"], "nll.std_err": out["nll"]["std_err"]}


def test_n_ref_scores_n_samples_against_a_larger_reference_set(stub_run):
    """eval.n_ref: 60 samples against the first 150 test images (not 60); more than the test set holds is refused."""
    out = runner_mod.evaluate_run(stub_run, EvalConfig(metrics=("fid",), n=60, n_ref=150, batch_size=40),
                                  progress=False)
    ext = _CheapExtractor()
    real = ext(load_dataset("digits", "test", None).images[:150]).double().numpy()
    fake = ext(_by_hand(_StubModel().eval(), 60, 0)).double().numpy()
    fid = frechet_distance(real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False))
    assert out["fid"]["value"] == pytest.approx(fid, rel=1e-9)
    assert (out["fid"]["protocol"]["n"], out["fid"]["protocol"]["n_ref"]) == (60, 150)
    size = len(load_dataset("digits", "test", None))
    with pytest.raises(UserError, match=f"exceeds the digits test set \\({size} images\\)"):
        runner_mod.evaluate_run(stub_run, EvalConfig(metrics=("fid",), n=60, n_ref=10**6), progress=False)


def test_evaluate_run_is_deterministic_batch_independent_and_cached(stub_run):
    _CheapExtractor.calls = 0
    cfg = EvalConfig(metrics=("fid", "kid"), n=120, batch_size=50)
    a = runner_mod.evaluate_run(stub_run, cfg, progress=False)
    first_calls = _CheapExtractor.calls
    b = runner_mod.evaluate_run(stub_run, cfg, progress=False)
    assert a["fid"]["value"] == b["fid"]["value"] and a["kid"]["value"] == b["kid"]["value"]
    # Only the generated images went through the extractor: the reference came from the cache.
    assert _CheapExtractor.calls - first_calls == math.ceil(120 / 50)
    c = runner_mod.evaluate_run(stub_run, EvalConfig(metrics=("fid",), n=120, batch_size=7), progress=False)
    assert c["fid"]["value"] == pytest.approx(a["fid"]["value"], rel=1e-9)
    d = runner_mod.evaluate_run(stub_run, EvalConfig(metrics=("fid",), n=120, seed=1), progress=False)
    assert d["fid"]["value"] != a["fid"]["value"]  # another generated set


# ----------------------------------------------------------------------------------------------- LPIPS


@pytest.fixture
def weights_dir(shared_dir):
    if shared_dir is None:
        pytest.skip("../shared is absent: no ImageNet trunk weights")
    return shared_dir / "weights"


def test_lpips_diversity_is_the_mean_pairwise_lpips_and_zero_for_one_image(stub_run, weights_dir, monkeypatch):
    cfg = EvalConfig(metrics=("lpips",), lpips_pairs=5, batch_size=4, seed=2)
    rec = runner_mod.evaluate_run(stub_run, cfg, weights_dir=weights_dir, progress=False)["lpips"]
    trunk = weights_dir / "alexnet_features_imagenet.pth"
    images = _by_hand(_StubModel().eval(), 10, 2)
    lp = LPIPS("alex", trunk, resize=64)
    with torch.no_grad():
        direct = [lp(images[2 * i:2 * i + 1], images[2 * i + 1:2 * i + 2]).item() for i in range(5)]
    assert rec["value"] == pytest.approx(float(np.mean(direct)), rel=1e-5) and rec["value"] > 1e-3
    assert rec["std_err"] == pytest.approx(float(np.std(direct, ddof=1) / math.sqrt(5)), rel=1e-4)
    proto = rec["protocol"]
    assert (proto["pairs"], proto["trunk_sha1"], proto["seed"]) == (5, sha1_file(trunk), 2)
    assert "alex" in proto["network"] and proto["resize"] == "bilinear to 64x64"
    _use_model(monkeypatch, _OneImageModel().eval())
    one = runner_mod.evaluate_run(stub_run, cfg, weights_dir=weights_dir, progress=False)["lpips"]
    assert one["value"] == 0.0


# ------------------------------------------------------------------------------------------------- CLI


def test_cli_eval_prints_one_json_line(stub_run, capsys):
    from latentprior.cli import main

    assert main(["eval", str(stub_run), "--metrics", "fid,pr", "--n", "60", "--batch-size", "30"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert set(out) == {"fid", "pr"} and out["fid"]["protocol"]["n"] == 60
    assert (stub_run / "eval" / "fid.json").is_file() and (stub_run / "eval" / "pr.json").is_file()


def test_cli_eval_user_errors_are_one_line_not_tracebacks(stub_run, capsys):
    from latentprior.cli import main

    for metrics, start in [("fid,bogus", "error: unknown metric(s) ['bogus']"),
                           ("is", "error: unknown metric(s) ['is']")]:
        assert main(["eval", str(stub_run), "--metrics", metrics]) == 2
        err = capsys.readouterr().err
        assert err.startswith(start) and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (stub_run / "eval").exists()
