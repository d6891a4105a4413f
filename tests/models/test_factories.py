"""Your own networks and prior named in a config by import path: trained, resumed, sampled, interpolated, evaluated
and swept through the CLI; and every way a factory can be wrong is one line naming its key."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
import torch
import yaml

from latentprior import cli
from latentprior.config import ConfigError, config_from_dict
from latentprior.evaluation import runner as runner_mod
from latentprior.models import build_model, load_run
from latentprior.models.factories import ALLOW_ENV, FactoryError, allow_factory_modules

MODULE = "lp_test_factories"  # a module of this test's own, written into tmp_path

NETS = textwrap.dedent('''
    import math
    import torch
    from torch import nn
    from latentprior.priors import Prior

    CALLS = []

    def make_encoder(image_shape, out_dim, hidden=32):
        CALLS.append(("encoder", tuple(image_shape), out_dim, hidden))
        return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(image_shape), hidden), nn.ReLU(),
                             nn.Linear(hidden, out_dim))

    class Decoder(nn.Module):
        def __init__(self, latent_dim, image_shape, hidden=32):
            super().__init__()
            self.shape = tuple(image_shape)
            self.net = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(),
                                     nn.Linear(hidden, math.prod(image_shape)), nn.Sigmoid())

        def forward(self, z):
            return self.net(z).view(-1, *self.shape)

    class ShiftedNormal(Prior):
        """N(mu, I) with a learned mean."""

        def __init__(self, dim, init=0.0):
            super().__init__(dim)
            self.mu = nn.Parameter(torch.full((dim,), float(init)))

        def log_prob(self, z, c=None):
            return -0.5 * ((z - self.mu) ** 2 + math.log(2 * math.pi)).sum(-1)

        def sample(self, n, c=None, generator=None, temperature=1.0):
            return self.mu + temperature * self.base_noise(n, self.dim, generator)

    def not_a_module(image_shape, out_dim):
        return 42

    def broken_inside(image_shape, out_dim):
        raise ZeroDivisionError("the factory's own bug")

    VALUE = 3
''')


@pytest.fixture
def factories(tmp_path, monkeypatch):
    """The test module importable (on sys.path) and allowed (in the environment)."""
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / f"{MODULE}.py").write_text(NETS)
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    monkeypatch.setenv(ALLOW_ENV, MODULE)
    yield tmp_path


def _sections(**over):
    data = {
        "data": {"name": "digits"},
        "net": {"encoder": f"{MODULE}:make_encoder", "encoder_args": {"hidden": 24},
                "decoder": f"{MODULE}:Decoder", "decoder_args": {"hidden": 20}},
        "prior": {"kind": "custom", "factory": f"{MODULE}:ShiftedNormal", "factory_args": {"init": 0.5}},
        "model": {"latent_dim": 4},
        "objective": {"kind": "vae", "beta": 1.0, "lr": 1e-3},
        "train": {"epochs": 0.4, "prior_epochs": 0.2, "batch_size": 100, "log_every": 2, "checkpoint_every": 3,
                  "progress": False},
    }
    for dotted, value in over.items():
        section, key = dotted.split("__")
        data[section][key] = value
    return data


def _config_file(tmp_path, **over):
    path = tmp_path / "factory.yaml"
    path.write_text(yaml.safe_dump(_sections(**over)))
    return path


class _CheapExtractor:
    """A deterministic stand-in for the Inception network (64 pixel statistics per image)."""

    def __call__(self, x):
        x = x.float().flatten(1)
        return torch.stack([x[:, i::64].mean(1) for i in range(64)], 1)

    def protocol(self):
        return {"network": "cheap-test-features"}


def test_factories_are_called_with_the_shapes_and_their_arguments(factories):
    import importlib

    mod = importlib.import_module(MODULE)
    mod.CALLS.clear()
    model = build_model(config_from_dict(_sections()), (1, 28, 28))
    assert mod.CALLS == [("encoder", (1, 28, 28), 8, 24)]  # 2 x latent_dim for the Gaussian encoder
    assert model.decoder.net[0].out_features == 20 and type(model.prior).__name__ == "ShiftedNormal"
    assert torch.equal(model.prior.mu, torch.full((4,), 0.5))


def test_a_factory_run_trains_resumes_samples_interpolates_and_evaluates_through_the_cli(factories, tmp_path,
                                                                                          capsys, monkeypatch):
    run = tmp_path / "run"
    cfg_file = _config_file(tmp_path)
    assert cli.main(["train", str(cfg_file), "--out", str(run), "--max-steps", "3"]) == 0
    assert cli.main(["resume", str(run)]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["net"]["encoder"] == f"{MODULE}:make_encoder" and saved["net"]["encoder_args"] == {"hidden": 24}
    assert saved["prior"] == {**saved["prior"], "kind": "custom", "factory": f"{MODULE}:ShiftedNormal",
                              "factory_args": {"init": 0.5}}
    model, cfg = load_run(run, device="cpu")
    assert model.prior.mu.requires_grad and not torch.equal(model.prior.mu, torch.full((4,), 0.5))  # it learned
    capsys.readouterr()

    assert cli.main(["sample", str(run), "--n", "16", "--out", str(tmp_path / "s.png")]) == 0
    assert cli.main(["interpolate", str(run), "--pairs", "2", "--steps", "3", "--out", str(tmp_path / "i.png")]) == 0
    monkeypatch.setattr(runner_mod, "make_feature_extractor", lambda device: _CheapExtractor())
    monkeypatch.setenv("LATENTPRIOR_CACHE_DIR", str(tmp_path / "cache"))
    assert cli.main(["eval", str(run), "--metrics", "fid,nll", "--n", "40", "--nll-k", "4"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (tmp_path / "s.png").stat().st_size > 0 and (tmp_path / "i.png").stat().st_size > 0
    assert np.isfinite(out["fid"]["value"]) and np.isfinite(out["nll"]["value"])
    assert json.loads((run / "eval" / "nll.json").read_text())["value"] == out["nll"]["value"]

    # the same run in a process where the module is not allowed: refused by name, nothing imported or written
    monkeypatch.delenv(ALLOW_ENV)
    assert cli.main(["sample", str(run), "--out", str(tmp_path / "t.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "net.encoder" in err and ALLOW_ENV in err and not (tmp_path / "t.png").exists()


def test_a_sweep_over_a_factory_argument(factories, tmp_path, capsys):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"base: {_config_file(tmp_path, train__prior_epochs=0)}\n"
                     "grid: {net.encoder_args.hidden: [8, 16]}\neval: {metrics: [nll], n: 20, nll_k: 2}\n")
    assert cli.main(["sweep", str(sweep), "--out", str(tmp_path / "out"), "--local"]) == 0
    runs = sorted((tmp_path / "out" / "runs").iterdir())
    hidden = sorted(yaml.safe_load((r / "config.yaml").read_text())["net"]["encoder_args"]["hidden"] for r in runs)
    assert hidden == [8, 16] and all((r / "eval" / "nll.json").is_file() for r in runs)
    widths = sorted(load_run(r, device="cpu")[0].encoder[1].out_features for r in runs)
    assert widths == [8, 16]


@pytest.mark.parametrize("over, words", [
    ({"net__encoder": "no_such_module_xyz:f"}, ["net.encoder", "not allowed"]),
    ({"net__encoder": f"{MODULE}:missing"}, ["net.encoder", "has no attribute 'missing'"]),
    ({"net__encoder": f"{MODULE}:VALUE"}, ["net.encoder", "not a function or class"]),
    ({"net__encoder": f"{MODULE}:not_a_module", "net__encoder_args": {}}, ["net.encoder", "returned a int"]),
    ({"net__decoder_args": {"width": 3}}, ["net.decoder", "does not take", "width"]),
    ({"net__decoder_args": {"latent_dim": 3}}, ["net.decoder_args", "set by latentprior"]),
    ({"prior__factory": f"{MODULE}:make_encoder", "prior__factory_args": {}}, ["prior.factory", "does not take"]),
    ({"net__encoder": "<mypkg.Enc object>"}, ["net.encoder", "Python object", "latentprior.load"]),
])
def test_a_wrong_factory_is_one_line_naming_its_key(factories, over, words):
    with pytest.raises(FactoryError) as e:
        build_model(config_from_dict(_sections(**over)), (1, 28, 28))
    assert "\n" not in str(e.value) and all(w in str(e.value) for w in words), str(e.value)


def test_a_module_that_cannot_be_imported_is_one_line(factories, monkeypatch):
    monkeypatch.setenv(ALLOW_ENV, f"{MODULE},not_installed_pkg")
    with pytest.raises(FactoryError, match=r"net.encoder: cannot import module 'not_installed_pkg.nets'"):
        build_model(config_from_dict(_sections(net__encoder="not_installed_pkg.nets:f")), (1, 28, 28))


def test_an_error_inside_a_factory_keeps_its_own_traceback(factories):
    with pytest.raises(ZeroDivisionError, match="the factory's own bug"):
        build_model(config_from_dict(_sections(net__encoder=f"{MODULE}:broken_inside", net__encoder_args={})),
                    (1, 28, 28))


@pytest.mark.parametrize("value", ["/tmp/evil.py:make", "evil.py", "mod:", ":f", "a b:c", "mod:f(1)", "../m:f"])
def test_only_import_paths_are_accepted(value):
    with pytest.raises(ConfigError, match="not an import path"):
        config_from_dict({"net": {"encoder": value}})


def test_allowing_a_module_from_python_covers_its_subpackages(monkeypatch):
    from latentprior.models import factories as f

    monkeypatch.delenv(ALLOW_ENV, raising=False)
    monkeypatch.setattr(f, "_ALLOWED", set())
    assert not f._is_allowed("lab.models")
    allow_factory_modules("lab")
    assert f._is_allowed("lab.models") and f._is_allowed("lab") and not f._is_allowed("laboratory")
    with pytest.raises(FactoryError):
        allow_factory_modules("lab/models")
