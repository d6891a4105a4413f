"""The conditional model of image-to-image translation: conditions, the conditional flow prior, the U-Net pair,
the objective's boundaries and KL schedule, the config rules, exact resume, and the experiment's files."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from torch import nn

from latentprior.data.conditions import CONDITIONS, downsample7, skeleton
from latentprior.nets.unet import UNetDecoder, UNetEncoder
from latentprior.objectives.cvae import KL_FLOOR, kl_to_prior, kl_weight
from latentprior.priors import FlowPrior
from latentprior.priors.conditional_flow import conditional_flow

DIM, SIDE = 4, 8
COND = SIDE * SIDE


def _randomised(prior: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter drawn at random: zero-initialised last layers would make couplings trivial maps and the
    base mean independent of the condition, so invertibility and dependence on c would hold vacuously."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in prior.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return prior


@pytest.fixture
def flow() -> FlowPrior:
    torch.manual_seed(0)
    return _randomised(conditional_flow(DIM, 4, 16, cond_shape=(1, SIDE, SIDE), embed_dim=6, embed_width=4)).double()


# ----------------------------------------------------------------------------- conditions


def test_skeleton_matches_scipy_lantuejoul():
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.avg_pool2d(torch.rand(6, 1, 28, 28, generator=g), 5, stride=1, padding=2) * 2.0
    got = skeleton(x)
    square = np.ones((3, 3), bool)
    for i in range(x.shape[0]):
        a, want = x[i, 0].numpy() > 0.5, np.zeros((28, 28), bool)
        while a.any():
            opened = ndi.binary_dilation(ndi.binary_erosion(a, square, border_value=0), square)
            want |= a & ~opened
            a = ndi.binary_erosion(a, square, border_value=0)
        assert want.sum() > 0
        assert np.array_equal(got[i, 0].numpy() > 0.5, want)


def test_downsample7_keeps_the_7x7_means_and_the_shape():
    x = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    y = downsample7(x)
    assert y.shape == x.shape
    want = x.view(3, 1, 7, 4, 7, 4).mean((3, 5))
    torch.testing.assert_close(y[:, :, ::4, ::4], want)
    assert {"downsample7", "skeleton"} <= set(CONDITIONS)


# ----------------------------------------------------------------------------- conditional flow


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conditional_flow_is_invertible_with_the_autograd_logdet_for_every_condition(flow, seed):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(3, DIM, generator=g, dtype=torch.float64)
    c = torch.rand(3, COND, generator=g, dtype=torch.float64)
    u, logdet = flow.to_base(z, c)
    back, inv_logdet = flow.from_base(u, c)
    torch.testing.assert_close(back, z, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(inv_logdet, -logdet, rtol=1e-10, atol=1e-10)
    for i in range(3):
        jac = torch.autograd.functional.jacobian(lambda v, i=i: flow.to_base(v[None], c[i:i + 1])[0][0], z[i])
        torch.testing.assert_close(logdet[i], torch.linalg.slogdet(jac)[1], rtol=1e-9, atol=1e-9)
    # log p(z | c) = log N(f(z); μ(E(c)), I) + log|det|, with the base mean read through the embedding
    loc = flow.base.mean(flow.embedding(c))
    want = torch.distributions.Normal(loc, 1.0).log_prob(u).sum(-1) + logdet
    torch.testing.assert_close(flow.log_prob(z, c), want)


def test_log_prob_and_samples_depend_on_the_condition(flow):
    g = torch.Generator().manual_seed(3)
    z = torch.randn(5, DIM, generator=g, dtype=torch.float64)
    c1, c2 = torch.rand(2, 5, COND, generator=g, dtype=torch.float64)
    assert (flow.log_prob(z, c1) - flow.log_prob(z, c2)).abs().min() > 1e-3
    s1 = flow.sample(5, c1, generator=torch.Generator().manual_seed(0))
    s2 = flow.sample(5, c2, generator=torch.Generator().manual_seed(0))
    assert (s1 - s2).abs().max() > 1e-3
    # every coupling, the base mean and the embedding take part: each parameter gets a gradient
    flow.log_prob(z, c1).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in flow.parameters())


def test_a_flow_without_layers_is_the_gaussian_with_a_learned_mean():
    prior = _randomised(conditional_flow(DIM, 0, 16, cond_shape=(1, SIDE, SIDE), embed_dim=6)).double()
    assert len(prior.transforms) == 0
    z, c = torch.randn(4, DIM, dtype=torch.float64), torch.rand(4, COND, dtype=torch.float64)
    mean = prior.base.mean(prior.embedding(c))
    torch.testing.assert_close(prior.log_prob(z, c), torch.distributions.Normal(mean, 1.0).log_prob(z).sum(-1))


# ----------------------------------------------------------------------------- the objective's parts


def test_kl_annealing_follows_the_variational_unet_schedule():
    # linear from 1e-6 at `start` to 1 at `end`, clipped (their code: start = T/2, end = 3T/4)
    assert kl_weight(0, 500, 750) == KL_FLOOR
    assert kl_weight(500, 500, 750) == KL_FLOOR
    assert kl_weight(625, 500, 750) == pytest.approx(KL_FLOOR + (1 - KL_FLOOR) * 0.5)
    assert kl_weight(700, 500, 750) == pytest.approx(KL_FLOOR + (1 - KL_FLOOR) * 0.8)
    assert kl_weight(750, 500, 750) == 1.0
    assert kl_weight(10_000, 500, 750) == 1.0
    assert kl_weight(0, 0, 0) == 1.0  # no annealing


def test_closed_form_kl_to_the_gaussian_prior_matches_torch():
    prior = _randomised(conditional_flow(DIM, 0, 16, cond_shape=(1, SIDE, SIDE), embed_dim=6)).double()
    g = torch.Generator().manual_seed(1)
    mean, logvar = torch.randn(2, 3, DIM, generator=g, dtype=torch.float64)
    c = torch.rand(3, COND, generator=g, dtype=torch.float64)
    loc = prior.base.mean(prior.embedding(c))
    want = torch.distributions.kl_divergence(torch.distributions.Normal(mean, (0.5 * logvar).exp()),
                                             torch.distributions.Normal(loc, 1.0)).sum(-1)
    torch.testing.assert_close(kl_to_prior(prior, mean, mean, logvar, c), want)


def test_unet_pair_shapes_and_the_decoder_reads_z_and_y():
    enc, dec = UNetEncoder(1, 28, 2 * DIM, width=0.25), UNetDecoder(DIM, 1, 28, width=0.25)
    x, y = torch.rand(2, 2, 1, 28, 28)
    assert enc(torch.cat((x, y), 1)).shape == (2, 2 * DIM)
    z = torch.randn(2, DIM)
    out = dec(z, y)
    assert out.shape == (2, 1, 28, 28) and 0 <= out.min() and out.max() <= 1
    assert (dec(z + 1.0, y) - out).abs().max() > 1e-6
    assert (dec(z, x) - out).abs().max() > 1e-6


# ----------------------------------------------------------------------------- model and objective


def _model(layers: int, **kwargs):
    from latentprior.models.autoencoder import LatentAutoencoder

    torch.manual_seed(0)
    prior = conditional_flow(DIM, layers, 16, cond_shape=(1, 28, 28), embed_dim=6, embed_width=4)
    return LatentAutoencoder(UNetEncoder(1, 28, 2 * DIM, width=0.125), UNetDecoder(DIM, 1, 28, width=0.125),
                             _randomised(prior, 1), condition="downsample7", latent_dim=DIM, **kwargs)


def _objective(model, beta: float, **kwargs):
    from latentprior.config import ObjectiveConfig
    from latentprior.objectives.cvae import ConditionalBilevel

    return ConditionalBilevel(model, ObjectiveConfig(kind="cvae", beta=beta, **kwargs))


@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_without_the_kl_term_the_encoder_gets_no_gradient_from_the_prior(beta):
    model = _model(layers=2)
    x = torch.rand(4, 1, 28, 28)
    updates = _objective(model, beta).updates(x)
    ae, prior_update = next(updates), next(updates)
    enc, prior = list(model.encoder.parameters()), list(model.prior.parameters())
    # the prior's own update never reaches the encoder (its codes are detached)
    assert all(g is None for g in torch.autograd.grad(prior_update.loss, enc, allow_unused=True))
    # F reaches the prior's parameters only through the KL term
    grads = torch.autograd.grad(ae.loss, prior, allow_unused=True)
    if beta == 0:
        assert all(g is None for g in grads)
    else:
        assert any(g is not None and g.abs().sum() > 0 for g in grads)
        assert ae.metrics["kl_weight"] == 1.0 and ae.metrics["kl"] > 0


def test_the_kl_weight_follows_the_objectives_own_step_count_and_is_saved():
    model = _model(layers=0)
    obj = _objective(model, 1.0, kl_anneal_start=1, kl_anneal_end=3)
    from latentprior.objectives.base import run_updates

    x = torch.rand(4, 1, 28, 28)
    weights = [run_updates(obj, x)["autoencoder/kl_weight"].item() for _ in range(4)]
    assert weights == pytest.approx([KL_FLOOR, KL_FLOOR, kl_weight(2, 1, 3), 1.0])
    fresh = _objective(_model(layers=0), 1.0, kl_anneal_start=1, kl_anneal_end=3)
    fresh.load_state_dict(obj.state_dict())
    assert fresh.joint_steps == 4


def test_conditional_sampling_needs_conditions_and_uses_them():
    from latentprior.models.autoencoder import ConditionRequired

    model = _model(layers=2).eval()
    x = torch.rand(3, 1, 28, 28)
    y = model.condition(x)
    with pytest.raises(ConditionRequired, match="conditional"):
        model.sample(3)
    a = model.sample(3, generator=torch.Generator().manual_seed(0), y=y)
    b = model.sample(3, generator=torch.Generator().manual_seed(0), y=y)
    c = model.sample(3, generator=torch.Generator().manual_seed(1), y=y)
    assert torch.equal(a, b) and (a - c).abs().max() > 1e-6


def test_the_perceptual_loss_is_zero_for_identical_images_and_has_gradients(shared_dir):
    if shared_dir is None:
        pytest.skip("../shared is absent: no ImageNet VGG16 weights")
    from latentprior.models import PerceptualLoss

    loss = PerceptualLoss("vgg16", shared_dir / "weights" / "vgg16_features_imagenet.pth").double()
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64)
    assert torch.equal(loss(x, x.clone()), torch.zeros(2, dtype=torch.float64))
    g = (x + 0.1 * torch.randn_like(x)).clamp(0, 1).requires_grad_(True)
    value = loss(x, g)
    assert (value > 0).all()
    (grad,) = torch.autograd.grad(value.sum(), g)
    assert grad.abs().sum() > 0 and torch.isfinite(grad).all()
    # inside a conditional model it is part of log p(x | y, z)
    model = _model(layers=0, pixel_likelihood=False, perceptual=loss.float())
    out = model.log_px_given_z(x.float(), x.float())
    assert torch.equal(out, torch.zeros(2))


# ----------------------------------------------------------------------------- config, run, experiment


def _run_cfg(**sections):
    from latentprior.config import config_from_dict

    base = {"data": {"name": "digits", "condition": "downsample7"}, "net": {"arch": "unet", "width": 0.125},
            "prior": {"kind": "realnvp", "layers": 2, "hidden": 16, "cond_embed": 8},
            "model": {"latent_dim": DIM, "learn_gamma": True},
            "objective": {"kind": "cvae", "beta": 1.0, "lr": 3e-4, "kl_anneal_start": 1, "kl_anneal_end": 4},
            "train": {"epochs": 0.4, "prior_epochs": 0.2, "batch_size": 100, "log_every": 1, "checkpoint_every": 2,
                      "progress": False}}
    for k, v in sections.items():
        base[k] = base.get(k, {}) | v
    return config_from_dict(base)


@pytest.mark.parametrize(("sections", "message"), [
    ({"prior": {"kind": "adversarial"}, "objective": {"kind": "cvae", "beta": 1.0}},
     "prior.kind 'adversarial' cannot be conditional"),
    ({"objective": {"kind": "vae"}}, "needs objective.kind 'cvae'"),
    ({"net": {"arch": "conv4"}}, "needs net.arch 'unet'"),
    ({"data": {"condition": "none"}}, "objective.kind 'cvae' is the conditional VAE"),
    ({"objective": {"kl_anneal_start": 5, "kl_anneal_end": 2}}, "kl_anneal_start/end"),
    ({"data": {"condition": "edges"}}, "data.condition: 'edges' is not valid"),
])
def test_conditional_config_rules_are_one_line_config_errors(sections, message):
    from latentprior.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        _run_cfg(**sections)
    # the Variational U-Net's N(mu(y), I) learns its mean, so prior-only epochs are allowed for it
    assert _run_cfg(prior={"kind": "normal"}).train.prior_epochs > 0


def test_a_conditional_run_resumes_exactly(tmp_path):
    # digits: 15 steps/epoch -> 6 joint steps (the KL weight rises over steps 1..4) + 3 prior-only steps
    from latentprior.models.load import load_run
    from latentprior.rundir import read_metrics
    from latentprior.rundir.checkpoints import load_checkpoint
    from latentprior.training import train

    cfg = _run_cfg()
    full = train(cfg, tmp_path / "full")
    assert full["step"] == full["total_steps"] == 9
    train(cfg, tmp_path / "split", max_steps=3)
    assert load_checkpoint(tmp_path / "split")["step"] == 3
    train(cfg, tmp_path / "split")
    a, b = read_metrics(tmp_path / "full"), read_metrics(tmp_path / "split")
    assert [r["phase"] for r in a] == ["joint"] * 6 + ["prior"] * 3
    assert [r["autoencoder/kl_weight"] for r in a[:6]] == pytest.approx(
        [kl_weight(i, 1, 4) for i in range(6)])
    for ra, rb in zip(a, b, strict=True):
        assert {k: v for k, v in ra.items() if k.endswith("loss")} == {k: v for k, v in rb.items()
                                                                       if k.endswith("loss")}, ra["step"]
    ma, _ = load_run(tmp_path / "full")
    mb, _ = load_run(tmp_path / "split")
    assert ma.conditional and ma.condition_name == "downsample7"
    for (k, va), vb in zip(ma.state_dict().items(), mb.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    assert (tmp_path / "full" / "samples" / "samples.png").stat().st_size > 0


class _PoolFeatures:
    """A cheap deterministic stand-in for the Inception network (4x4 average-pooled pixels)."""

    def __call__(self, images):
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.clamp(0, 1)
        return torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)

    def protocol(self):
        return {"network": "pool-test-features", "weights_sha1": "0" * 40}


def test_the_experiment_writes_the_table_and_the_grid_and_reuses_its_runs(tmp_path, shared_dir, monkeypatch):
    if shared_dir is None:
        pytest.skip("../shared is absent: no AlexNet trunk for LPIPS")
    import latentprior.evaluation.registry as registry
    from latentprior.studies.translation import run_conditional, task_from_dict

    monkeypatch.setattr(registry, "make_feature_extractor", lambda device: _PoolFeatures())
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

    folder = Path(__file__).resolve().parents[1] / "configs" / "conditional"
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
