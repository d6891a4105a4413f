"""Linear separability, perceptual path length, morphological attributes and the attribute-classifier cache."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from latentprior.config import EvalConfig
from latentprior.data import load_dataset
from latentprior.evaluation.attributes import AttributeSetError, attribute_set, measure_morphology
from latentprior.evaluation.classifier import ClassifierSettings, classifier_key, load_or_train_classifier
from latentprior.evaluation.features import chunk_generator, generated_images
from latentprior.evaluation.ppl import path_distances, perceptual_path_length, trimmed_mean
from latentprior.evaluation.registry import METRICS, EvalInputs
from latentprior.evaluation.separability import (
    LatentSpaceError,
    conditional_entropy,
    linear_separability,
    model_separability,
)
from latentprior.priors import RealNVPPrior, StandardNormal


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def _binary_entropy(p: float) -> float:
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


# --------------------------------------------------------------------------- separability


def test_conditional_entropy_by_hand():
    # X=0: Y is 0 or 1 (ln 2 nats); X=1: Y is always 1 (0 nats); each half the mass.
    assert conditional_entropy(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])) == pytest.approx(0.5 * math.log(2))
    assert conditional_entropy(np.array([0, 1, 0, 1]), np.array([0, 1, 0, 1])) == pytest.approx(0.0, abs=1e-12)


def test_separability_of_linear_attributes_is_one():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4000, 6))
    w = rng.standard_normal(6)
    probs = np.stack([_sigmoid(8 * z @ w), _sigmoid(8 * (z[:, 2] - 1.28))], axis=1)  # 50/50 and 10/90
    rec = linear_separability(z, probs, ["balanced", "rare"])
    assert rec["label_entropy"]["rare"] < 0.45  # the rare attribute is imbalanced among the kept samples
    for name in ("balanced", "rare"):
        assert rec["conditional_entropy"][name] < 0.02
    assert rec["value"] == pytest.approx(1.0, abs=0.04)


def test_separability_keeps_only_the_most_confident_half():
    rng = np.random.default_rng(2)
    z = rng.standard_normal((4000, 3))
    # The first half: the classifier hesitates (p near 0.5) and its labels are noise; the second half: it is
    # sure, and the label is linear in z. Only the second half may enter the SVM.
    p = np.concatenate([0.5 + 0.01 * rng.uniform(-1, 1, 2000), _sigmoid(20 * z[2000:, 0])])
    rec = linear_separability(z, p[:, None])
    assert rec["kept_per_attribute"] == 2000
    assert rec["conditional_entropy"]["attribute_0"] < 0.02


def test_separability_of_independent_attributes_is_the_label_entropy():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((4000, 4))
    noise = rng.standard_normal((4000, 2))  # the attributes depend on this, never on z
    probs = _sigmoid(6 * (noise - np.array([0.0, 1.28])))
    rec = linear_separability(z, probs, ["balanced", "rare"])
    for name, h in rec["label_entropy"].items():
        assert rec["conditional_entropy"][name] == pytest.approx(h, abs=0.02)
    assert rec["label_entropy"]["balanced"] == pytest.approx(math.log(2), abs=0.01)
    assert rec["value"] == pytest.approx(math.exp(sum(rec["label_entropy"].values())), rel=0.05)


class _TinyModel(nn.Module):
    """A 'generative model' whose image brightness is sigmoid(4 z_0), on an 8×8 canvas."""

    def __init__(self, prior: nn.Module) -> None:
        super().__init__()
        self.prior = prior
        self.anchor = nn.Parameter(torch.zeros(()))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(4 * z[:, :1, None, None]).expand(-1, 1, 8, 8) + self.anchor

    def sample(self, n: int, generator=None) -> torch.Tensor:
        return self.decode(self.prior.sample(n, generator=generator)).clamp(0, 1)


class _Brightness:
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((1, 2, 3))[:, None]


def test_model_separability_reads_the_generated_set_and_both_spaces():
    torch.manual_seed(0)
    flow = RealNVPPrior(2, n_layers=2, hidden=8)
    model = _TinyModel(flow)
    codes = []
    recs = model_separability(model, _Brightness(), n=600, seed=3, spaces=("zT", "z0"), progress=False)
    assert recs["zT"]["value"] == pytest.approx(1.0, abs=0.05)  # brightness is monotone in z_0: linear in Z_T
    assert recs["z0"]["n"] == 600
    # The same images as generated_images(model, n, seed): what FID reads.
    from latentprior.evaluation.separability import sampled_codes
    codes = torch.cat([x for _, _, x in sampled_codes(model, 250, 3)])
    assert torch.equal(codes, torch.cat(list(generated_images(model, 250, 3, 100))))
    with pytest.raises(LatentSpaceError, match="flow prior"):
        model_separability(_TinyModel(StandardNormal(2)), _Brightness(), n=10, seed=0, spaces=("z0",))


def test_z0_metrics_are_refused_by_check_on_a_non_flow_run():
    x = EvalInputs(_TinyModel(StandardNormal(2)), SimpleNamespace(data=SimpleNamespace(name="mnist")), None, 0,
                   EvalConfig(), {}, torch.device("cpu"))
    for name in ("separability_z0", "ppl_z0"):
        with pytest.raises(LatentSpaceError, match="needs a flow prior"):
            METRICS[name].check(x)
    METRICS["separability_zt"].check(x)  # the same run has Z_T
    bad = EvalInputs(x.model, SimpleNamespace(data=SimpleNamespace(name="cifar10")), None, 0,
                     EvalConfig(attributes="morpho"), {}, torch.device("cpu"))
    with pytest.raises(AttributeSetError, match="no 'morpho' attributes"):
        METRICS["separability_zt"].check(bad)


def test_both_separability_metrics_share_one_classifier_and_sampling_pass(monkeypatch):
    import latentprior.evaluation.latent_metrics as lm
    from latentprior.evaluation.attributes import AttributeSet

    loads, passes = [], []
    monkeypatch.setattr(lm, "_train_split", lambda x: loads.append("train") or "train")
    monkeypatch.setattr(lm, "attribute_set", lambda train, kind: AttributeSet("classes", "mnist", ("a",)))
    monkeypatch.setattr(lm, "load_or_train_classifier", lambda *a, **k: (None, {"test_accuracy": {"a": 0.9}}))
    monkeypatch.setattr(lm, "classifier_key", lambda *a: {"key": 1})

    def separability(model, clf, *, spaces, **kw):
        passes.append(spaces)
        return {s: {"value": 1.0 + i, "conditional_entropy": {}, "label_entropy": {}, "svm_converged": {}}
                for i, s in enumerate(spaces)}

    monkeypatch.setattr(lm, "model_separability", separability)
    x = EvalInputs(None, SimpleNamespace(data=SimpleNamespace(name="mnist")), None, 0,
                   EvalConfig(metrics=("separability_zt", "fid", "separability_z0")), {"dataset": "mnist"},
                   torch.device("cpu"))
    values = [METRICS[m].compute(x)["value"] for m in ("separability_zt", "separability_z0")]
    assert (values, passes, loads) == ([1.0, 2.0], [("zT", "z0")], ["train"])


# --------------------------------------------------------------------------- perceptual path length


def _isometry(d: int, p: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(p, d, generator=torch.Generator().manual_seed(5), dtype=torch.float64))
    return q  # (p, d) with orthonormal columns: ||Q z|| = ||z||


def _sq_l2(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x - y).pow(2).flatten(1).sum(1)


@pytest.mark.parametrize("method", ["lerp", "slerp"])
def test_ppl_of_an_isometric_generator_matches_the_closed_form(method):
    d, b = 5, 64
    q = _isometry(d, 3 * 4 * 4)
    g = torch.Generator().manual_seed(0)
    a, c = torch.randn(b, d, generator=g, dtype=torch.float64), torch.randn(b, d, generator=g, dtype=torch.float64)
    t = torch.rand(b, generator=g, dtype=torch.float64)
    got = path_distances(lambda z: (z @ q.T).view(-1, 3, 4, 4), _sq_l2, a, c, t, epsilon=1e-6, method=method)
    if method == "lerp":
        want = (c - a).pow(2).sum(1)  # |d/dt ((1-t) a + t c)|² = |c - a|²
    else:  # |d/dt slerp|² = ω²/sin²ω · |−cos((1−t)ω) a + cos(tω) c|²
        omega = torch.acos((a * c).sum(1) / (a.norm(dim=1) * c.norm(dim=1)))
        vel = -torch.cos((1 - t) * omega)[:, None] * a + torch.cos(t * omega)[:, None] * c
        want = (omega / torch.sin(omega)).pow(2) * vel.pow(2).sum(1)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=0)


class _IsoModel(nn.Module):
    def __init__(self, prior: nn.Module, q: torch.Tensor) -> None:
        super().__init__()
        self.prior = prior
        self.register_buffer("q", q.float())

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (0.01 * z @ self.q.T).view(-1, 1, 4, 4) + 0.5  # stays inside [0, 1]: no clamping


def test_perceptual_path_length_end_to_end_is_the_trimmed_mean_of_the_closed_form():
    model = _IsoModel(StandardNormal(3), _isometry(3, 16))
    n, seed, eps = 250, 7, 1e-2  # G is linear, so the lerp difference is exact for any epsilon
    rec = perceptual_path_length(model, _sq_l2, n=n, seed=seed, space="zT", epsilon=eps, method="lerp",
                                 progress=False)
    want = []
    for start in range(0, n, 100):  # the protocol's endpoints: chunk (seed, start) draws a, b, then t
        g = chunk_generator(seed, start)
        m = min(100, n - start)
        a, b = model.prior.sample(m, generator=g), model.prior.sample(m, generator=g)
        want.append(1e-4 * (b - a).double().pow(2).sum(1))
    value, kept = trimmed_mean(torch.cat(want).numpy())
    assert rec["method"] == "lerp" and rec["kept"] == kept
    assert rec["value"] == pytest.approx(value, rel=1e-4)


def test_trimmed_mean_drops_the_outer_percentiles():
    d = np.ones(1000)
    d[0], d[1] = 1e6, -1e6
    assert trimmed_mean(d) == (1.0, 998)


# --------------------------------------------------------------------------- attributes and classifiers


def _canvas() -> np.ndarray:
    return np.zeros((28, 28), np.uint8)


def test_morphology_of_drawn_bars():
    vertical, thick, horizontal, slanted = _canvas(), _canvas(), _canvas(), _canvas()
    vertical[5:20, 10:13] = 255  # 3 wide, 15 tall
    thick[4:24, 8:13] = 255  # 5 wide, 20 tall
    horizontal[12:15, 4:24] = 255  # 20 wide, 3 tall
    for y in range(4, 24):  # a 3-pixel stroke sheared by 0.5 pixel per row, top to the right
        c = round(14 - 0.5 * (y - 14))
        slanted[y, c - 1:c + 2] = 255
    m = measure_morphology(np.stack([vertical, thick, horizontal, slanted, _canvas()]))
    np.testing.assert_allclose(m[0], [3, 0, 3, 15], atol=1e-9)
    np.testing.assert_allclose(m[1], [5, 0, 5, 20], atol=1e-9)
    np.testing.assert_allclose(m[2], [3, 0, 20, 3], atol=1e-9)
    assert m[3, 1] == pytest.approx(math.atan(0.5), abs=0.02)
    assert m[3, 2] == pytest.approx(3, abs=1.5) and m[3, 3] == 20
    assert np.isnan(m[4]).all()


def test_classifier_cache_key_and_round_trip(tmp_path):
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    classes, both = attribute_set(train, "classes"), attribute_set(train, "classes+morpho")
    settings = ClassifierSettings(epochs=1, width=4, n_train=300, batch_size=64)
    key = classifier_key(train, classes, settings)
    assert key == classifier_key(train, attribute_set(train, "classes"), settings)
    assert key != classifier_key(train, both, settings)
    assert key != classifier_key(train, classes, ClassifierSettings(epochs=2, width=4, n_train=300, batch_size=64))
    labels = both.labels(test)
    assert labels.shape == (len(test), 14) and torch.equal(labels[:, :10].argmax(1), test.labels)
    net, report = load_or_train_classifier(train, test, both, settings, cache_dir=tmp_path, progress=False)
    again, report2 = load_or_train_classifier(train, test, both, settings, cache_dir=tmp_path, progress=False)
    assert report2 == report and len(list((tmp_path / "classifiers").glob("*.pt"))) == 1
    torch.testing.assert_close(again.probabilities(test.images[:50]), net.probabilities(test.images[:50]))
    acc = ((net.probabilities(test.images) >= 0.5) == labels.bool()).float().mean(0)
    assert report["test_accuracy"]["thick"] == pytest.approx(acc[10].item(), abs=1e-5)
