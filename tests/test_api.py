"""The Python API with your own modules: a model of custom networks and a custom prior trained through the whole
run machinery, stopped and resumed bit for bit, refused in one line when it no longer fits, loaded back and
evaluated; images in any container."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

import latentprior as lp
from latentprior import cli
from latentprior.data import as_image_dataset
from latentprior.rundir import read_metrics
from latentprior.rundir.checkpoints import CheckpointError, load_checkpoint

D = 4


class Encoder(nn.Module):
    """Conv + BatchNorm: its running statistics move in the joint phase and stay in the prior-only one."""

    def __init__(self, width=8):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(), nn.Flatten(),
                                 nn.Linear(width * 14 * 14, 2 * D))

    def forward(self, x):
        return self.net(x)


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(D, 64), nn.ReLU(), nn.Linear(64, 784), nn.Sigmoid())

    def forward(self, z):
        return self.net(z).view(-1, 1, 28, 28)


class ShiftedNormal(lp.Prior):
    """N(mu, diag(s^2)) with learned mu and log s: a prior of the user's, with parameters for the prior epochs."""

    def __init__(self, dim):
        super().__init__(dim)
        self.mu = nn.Parameter(torch.zeros(dim))
        self.log_s = nn.Parameter(torch.zeros(dim))

    def log_prob(self, z, c=None):
        return (-0.5 * ((z - self.mu) / self.log_s.exp()) ** 2 - self.log_s - 0.5 * math.log(2 * math.pi)).sum(-1)

    def sample(self, n, c=None, generator=None, temperature=1.0):
        return self.mu + temperature * self.log_s.exp() * self.base_noise(n, self.dim, generator)


def _model(seed=0, width=8):
    torch.manual_seed(seed)
    return lp.LatentAutoencoder(Encoder(width), Decoder(), ShiftedNormal(D), latent_dim=D)


def _images(n=400):
    return lp.load_dataset("digits", "train").images[:n].float() / 255.0  # (n, 1, 28, 28) in [0, 1]: custom data


def _trainer(run_dir):
    # 400 images / 50 = 8 steps per epoch: 8 joint steps, then 4 prior-only steps
    return lp.Trainer(run_dir, objective=lp.ObjectiveConfig(kind="vae", beta=1.0, lr=1e-3),
                      train=lp.TrainConfig(epochs=1, prior_epochs=0.5, batch_size=50, log_every=1,
                                           checkpoint_every=4, progress=False))


def _losses(run_dir):
    return [(r["step"], r["phase"], {k: v for k, v in r.items() if k.endswith("/loss")}) for r in read_metrics(run_dir)]


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """An uninterrupted run and one stopped at step 5 (checkpointed there) and resumed with a new model object
    (other initial weights: the checkpoint must replace them) and a new Trainer, as a new process would."""
    root = tmp_path_factory.mktemp("twins")
    full_model, data = _model(), _images()
    full = _trainer(root / "full").fit(full_model, data)
    _trainer(root / "split").fit(_model(), data, max_steps=5)
    resumed_model = _model(seed=123)
    resumed = _trainer(root / "split").fit(resumed_model, data)
    return root, full, resumed, full_model, resumed_model


def test_a_custom_model_stopped_and_resumed_equals_its_uninterrupted_twin_bit_for_bit(twins):
    root, full, resumed, full_model, resumed_model = twins
    assert full["step"] == resumed["step"] == 12 and resumed["steps_this_session"] == 12 - 5
    a, b = _losses(root / "full"), _losses(root / "split")
    assert [r[:2] for r in a] == [r[:2] for r in b] and {r[1] for r in a} == {"joint", "prior"}
    for ra, rb in zip(a, b, strict=True):
        assert ra == rb, f"step {ra[0]} differs after the resume"
    for (k, va), vb in zip(full_model.state_dict().items(), resumed_model.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    # the prior learned (both phases), and the run directory is the CLI's
    assert not torch.equal(full_model.prior.mu.detach(), torch.zeros(D))
    for part in ("config.yaml", "metrics.jsonl", "samples/samples.png", "tb"):
        assert (root / "full" / part).exists(), part


def test_the_run_records_the_model_it_was_given(twins):
    root = twins[0]
    saved = load_checkpoint(root / "full")
    cfg = saved["config"]
    assert cfg.net.encoder == f"<{__name__}.Encoder object>" and cfg.prior.kind == "custom"
    assert cfg.prior.factory == f"<{__name__}.ShiftedNormal object>" and cfg.model.latent_dim == D
    assert cfg.data.name == "custom" and len(saved["data_sha1"]) == 40


def test_a_model_of_another_architecture_is_refused_in_one_line(twins):
    root = twins[0]
    before = load_checkpoint(root / "split")["step"]
    trainer = _trainer(root / "split")
    trainer.train_config = lp.TrainConfig(epochs=2, prior_epochs=0.5, batch_size=50, log_every=1, checkpoint_every=4,
                                   progress=False)
    with pytest.raises(CheckpointError) as e:
        trainer.fit(_model(width=4), _images())
    message = str(e.value)
    assert "\n" not in message and "do not fit the model" in message and "encoder.net.0.weight" in message
    with pytest.raises(CheckpointError, match="trained on other images"):
        trainer.fit(_model(), _images(400).flip(0))
    assert load_checkpoint(root / "split")["step"] == before


def test_loaded_back_into_your_modules_and_evaluated_into_the_run(twins):
    root, _, _, full_model, _ = twins
    model = lp.load(root / "full", _model(seed=7))
    for va, vb in zip(full_model.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(va, vb)
    assert not model.training
    test = lp.load_dataset("digits", "test")
    rec = lp.evaluate(model, ["nll"], reference=test, n=20, nll_k=3, run_dir=root / "full", progress=False)["nll"]
    assert rec["protocol"]["dataset"] == "digits" and math.isfinite(rec["value"])
    assert json.loads((root / "full" / "eval" / "nll.json").read_text())["value"] == rec["value"]
    again = lp.evaluate(model, "nll", reference=test.images[:20], n=20, nll_k=3, progress=False)["nll"]
    assert again["value"] == rec["value"] and "run_dir" not in again  # the same images as a tensor; nothing written


def test_the_cli_refuses_to_rebuild_a_python_model_in_one_line(twins, tmp_path, capsys):
    assert cli.main(["sample", str(twins[0] / "full"), "--out", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "net.encoder" in err and "latentprior.load(run_dir, model)" in err


def test_an_encoder_of_the_wrong_shape_is_refused_before_training(tmp_path):
    model = lp.LatentAutoencoder(nn.Sequential(nn.Flatten(), nn.Linear(784, D)), Decoder(), ShiftedNormal(D),
                                 latent_dim=D)
    with pytest.raises(lp.UserError, match=r"the encoder returned \(2, 4\) .* expected \(2, 8\)"):
        _trainer(tmp_path / "r").fit(model, _images())
    assert not (tmp_path / "r" / "config.yaml").exists()


def test_an_adversarial_model_with_your_networks(tmp_path):
    # build_model keeps the config's discriminator and likelihood and takes your encoder and decoder
    cfg = lp.Config(prior=lp.PriorConfig(kind="normal"), model=lp.ModelConfig(latent_dim=D),
                    objective=lp.ObjectiveConfig(kind="aae", beta=1.0, lr=1e-3))
    torch.manual_seed(0)
    model = lp.build_model(cfg, (1, 28, 28), encoder=nn.Sequential(nn.Flatten(), nn.Linear(784, 2 * D)),
                           decoder=Decoder())
    out = lp.Trainer(tmp_path / "aae", cfg, train={"epochs": 0.25, "batch_size": 50, "progress": False}).fit(
        model, _images(200))
    assert {"autoencoder/loss", "discriminator/loss"} <= set(out["metrics"])
    with pytest.raises(lp.UserError, match="trains a latent discriminator"):
        lp.Trainer(tmp_path / "x", objective="aae").fit(_model(), _images(200))


def test_images_in_any_container_become_the_same_dataset():
    ds = lp.load_dataset("digits", "train").subset(30)
    x = ds.images  # (30, 1, 28, 28) uint8
    as_float = as_image_dataset(x.float() / 255)
    as_nhwc = as_image_dataset(x.permute(0, 2, 3, 1).numpy())
    as_nhw = as_image_dataset(x[:, 0].numpy())
    as_items = as_image_dataset(torch.utils.data.TensorDataset(x.float() / 255, ds.labels))
    for other in (as_float, as_nhwc, as_nhw, as_items):
        assert torch.equal(other.images, x)
    assert torch.equal(as_items.labels, ds.labels) and as_float.labels is None
    from PIL import Image

    pil = as_image_dataset([Image.fromarray(a[0].numpy()) for a in x])
    assert torch.equal(pil.images, x)
    with pytest.raises(lp.DataError, match=r"must lie in \[0, 1\]"):
        as_image_dataset(x.float())
    with pytest.raises(lp.DataError, match="differ in shape"):
        as_image_dataset([np.zeros((28, 28), np.uint8), np.zeros((32, 32), np.uint8)])


def test_cuda_graphs_auto_stays_eager_for_your_modules(monkeypatch):
    # graph capture would replay code it cannot see into; `auto` keeps such a step eager, `on` is the user's call
    from latentprior.training import run as run_module

    seen = []
    real = run_module.use_cuda_graphs
    monkeypatch.setattr(run_module, "use_cuda_graphs", lambda tc, dev, mp, blocker: seen.append(blocker) or
                        real(tc, dev, mp, blocker))
    data = lp.as_image_dataset(_images(100))
    cfg, _ = lp.Trainer("unused", objective="vae", train={"batch_size": 50, "device": "cpu"}).resolve(_model(), data)
    lp.open_run(cfg, None, model=_model(), data=data)
    lp.open_run(lp.Config(data=lp.DataConfig(name="custom"), net=lp.NetConfig(width=0.0625),
                          prior=lp.PriorConfig(kind="normal"), train=lp.TrainConfig(batch_size=50, device="cpu")),
                None, data=data)
    assert seen == ["the model holds modules from outside latentprior", None]
