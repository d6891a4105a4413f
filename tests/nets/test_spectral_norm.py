"""Spectral norm on the layer's output (nets/spectral_norm.py) against torch's parametrization, the reference:
function, gradient and u, v buffers in float64 over optimizer steps, across a save/load, from torch's state-dict
keys, and the infogan encoder built exactly as the parametrization built it (same draws, same parameter order)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as torch_spectral_norm

import latentprior.nets.registry as registry
from latentprior.config import config_from_dict
from latentprior.data import load_dataset
from latentprior.models.load import load_run
from latentprior.nets import build_encoder
from latentprior.nets.spectral_norm import SpectralNormConv2d, SpectralNormLinear, spectral_norm
from latentprior.rundir import read_metrics
from latentprior.training import train
from latentprior.training.run import open_run

TOL = 1e-10

LAYERS = {
    "linear": (lambda: nn.Linear(40, 24), (6, 40)),
    "linear, no bias, 3-D input": (lambda: nn.Linear(40, 24, bias=False), (2, 3, 40)),
    "conv": (lambda: nn.Conv2d(3, 8, 4, stride=2, padding=1), (5, 3, 8, 8)),
    "conv, no bias, dilated": (lambda: nn.Conv2d(4, 6, 3, padding=2, dilation=2, bias=False), (5, 4, 7, 7)),
}


def _pair(make, seed: int = 0):
    """(torch's parametrized layer, ours), each made from the same seed, float64."""
    torch.manual_seed(seed)
    ref = torch_spectral_norm(make().double())
    torch.manual_seed(seed)
    ours = spectral_norm(make().double())
    return ref, ours


def _uv(layer) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(layer, SpectralNormLinear | SpectralNormConv2d):
        return layer.weight_u, layer.weight_v
    p = layer.parametrizations.weight[0]
    return p._u, p._v


def _loss(layer, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # two forwards before one backward (a GAN's D(real) and D(fake)): the second power iteration must not
    # change what the first forward's backward reads
    y = layer(x)
    return y, (y.pow(2) + y).sum() + layer(x.flip(0)).tanh().sum()


def _assert_close(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    assert a.shape == b.shape, what
    assert (a - b).abs().max().item() < TOL, f"{what}: {(a - b).abs().max().item():.3g}"


def _steps(ref, ours, x, n: int, opt_ref, opt_ours) -> None:
    for step in range(n):
        (y_ref, l_ref), (y_ours, l_ours) = _loss(ref, x), _loss(ours, x)
        _assert_close(y_ours, y_ref, f"step {step} output")
        opt_ref.zero_grad()
        opt_ours.zero_grad()
        l_ref.backward()
        l_ours.backward()
        for (name, p_ref), p_ours in zip(ref.named_parameters(), ours.parameters(), strict=True):
            _assert_close(p_ours.grad, p_ref.grad, f"step {step} gradient of {name}")
        for a, b, name in zip(_uv(ours), _uv(ref), "uv", strict=True):
            _assert_close(a, b, f"step {step} {name}")
        opt_ref.step()
        opt_ours.step()


@pytest.mark.parametrize("name", list(LAYERS))
def test_function_gradient_and_buffers_match_torch_over_five_steps(name):
    make, shape = LAYERS[name]
    ref, ours = _pair(make)
    for a, b in zip(_uv(ours), _uv(ref), strict=True):
        assert torch.equal(a, b)  # the same draws and initial iterations, to the bit
    x = torch.randn(shape, dtype=torch.float64)
    w0, u0 = ours.weight.detach().clone(), ours.weight_u.clone()
    _steps(ref, ours, x, 5, torch.optim.Adam(ref.parameters(), lr=0.05), torch.optim.Adam(ours.parameters(), lr=0.05))
    # the weights and u moved: neither σ nor u is a constant the comparison could pass with
    assert (ours.weight - w0).abs().max() > 0.1 and (ours.weight_u - u0).abs().max() > 1e-6
    ref.eval()
    ours.eval()
    u_before = ours.weight_u.clone()
    _assert_close(ours(x), ref(x), "eval output")
    assert torch.equal(ours.weight_u, u_before)  # eval mode: the stored u, v, no iteration


@pytest.mark.parametrize("name", ["linear", "conv"])
def test_resume_from_a_saved_state_continues_like_torch(name):
    """Ours saved after 2 steps and loaded into a layer made from another seed continues as torch's does."""
    make, shape = LAYERS[name]
    ref, ours = _pair(make)
    x = torch.randn(shape, dtype=torch.float64)
    opt_ref, opt_ours = torch.optim.Adam(ref.parameters(), lr=0.05), torch.optim.Adam(ours.parameters(), lr=0.05)
    _steps(ref, ours, x, 2, opt_ref, opt_ours)
    saved, saved_opt = copy.deepcopy(ours.state_dict()), copy.deepcopy(opt_ours.state_dict())
    assert set(saved) == {"weight", "weight_u", "weight_v"} | ({"bias"} if ours.bias is not None else set())
    _, resumed = _pair(make, seed=1)
    resumed.load_state_dict(saved)
    opt_resumed = torch.optim.Adam(resumed.parameters(), lr=0.05)
    opt_resumed.load_state_dict(saved_opt)
    _steps(ref, resumed, x, 3, opt_ref, opt_resumed)


@pytest.mark.parametrize("name", ["linear", "conv"])
def test_a_state_of_torchs_parametrization_loads_with_its_optimizer_state(name):
    """A checkpoint of torch's parametrization (keys ``parametrizations.weight.original``, ``...0._u``,
    ``...0._v``) and its Adam state load into ours, which then continues as torch's layer does."""
    make, shape = LAYERS[name]
    ref, _ = _pair(make)
    x = torch.randn(shape, dtype=torch.float64)
    opt_ref = torch.optim.Adam(ref.parameters(), lr=0.05)
    for _ in range(2):
        opt_ref.zero_grad()
        _loss(ref, x)[1].backward()
        opt_ref.step()
    state = ref.state_dict()
    assert "parametrizations.weight.original" in state and "parametrizations.weight.0._u" in state
    _, ours = _pair(make, seed=1)
    ours.load_state_dict(state)  # strict: every key used, none missing
    opt_ours = torch.optim.Adam(ours.parameters(), lr=0.05)
    opt_ours.load_state_dict(copy.deepcopy(opt_ref.state_dict()))  # by position: the parameter order matters
    _steps(ref, ours, x, 3, opt_ref, opt_ours)


def test_infogan_encoder_is_built_as_with_torchs_parametrization(monkeypatch):
    """The same random draws (the rest of a model's initialisation is unchanged), the same values, the same
    parameter order, and the old encoder's state dict loads strictly and gives the same features."""
    torch.manual_seed(0)
    ours = build_encoder("infogan", 1, 28, 16, width=0.125)
    after_ours = torch.get_rng_state()
    monkeypatch.setattr(registry, "spectral_norm", torch_spectral_norm)  # the parametrization, applied in place
    torch.manual_seed(0)
    old = build_encoder("infogan", 1, 28, 16, width=0.125)
    assert torch.equal(torch.get_rng_state(), after_ours)
    assert sum(isinstance(m, SpectralNormConv2d | SpectralNormLinear) for m in ours.modules()) == 4
    old_params, our_params = list(old.named_parameters()), list(ours.named_parameters())
    assert len(old_params) == len(our_params)
    for (old_name, a), (our_name, b) in zip(old_params, our_params, strict=True):
        assert our_name == old_name.replace("parametrizations.weight.original", "weight")
        assert torch.equal(a, b), our_name
    ours.load_state_dict(old.state_dict())
    x = torch.rand(8, 1, 28, 28)
    ours.train()
    old.train()
    torch.testing.assert_close(ours(x), old(x), rtol=1e-5, atol=1e-6)  # float32: the division is elsewhere


def test_autocast_keeps_the_layers_dtype_and_value():
    """Under bf16 autocast the output is bf16 like an unnormalised layer's, and σ stays fp32 arithmetic."""
    torch.manual_seed(0)
    layer = SpectralNormLinear(64, 32).eval()
    x = torch.randn(10, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
        plain = nn.functional.linear(x, layer.normalised_weight(), layer.bias)
    assert y.dtype == plain.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), layer(x), rtol=2e-2, atol=2e-2)


def test_only_linear_and_conv2d_are_converted():
    with pytest.raises(TypeError, match="nn.Linear or nn.Conv2d, got ConvTranspose2d"):
        spectral_norm(nn.ConvTranspose2d(2, 3, 4))


@pytest.mark.slow
def test_a_run_checkpointed_with_torchs_parametrization_loads_and_resumes(tmp_path, monkeypatch):
    """A run directory written while the encoder used torch's parametrization (its checkpoint holds
    ``parametrizations.weight.original`` keys and an Adam state in that parameter order) loads into today's model
    with the same features, and resumes: the next steps' losses are the old model's, up to float32 rounding."""
    cfg = config_from_dict({
        "data": {"name": "digits"}, "net": {"arch": "infogan", "width": 0.0625}, "model": {"latent_dim": 8},
        "prior": {"kind": "realnvp", "layers": 2, "hidden": 16}, "objective": {"kind": "vae", "beta": 1.0, "lr": 1e-3},
        "train": {"epochs": 1, "batch_size": 100, "log_every": 1, "progress": False, "threads": 1}})
    digits = load_dataset("digits", "train")
    x = digits.batch(torch.arange(16))
    with monkeypatch.context() as m:
        m.setattr(registry, "spectral_norm", torch_spectral_norm)
        old = open_run(cfg, tmp_path, data=digits)
        assert any("parametrizations.weight.original" in k for k in old.model.state_dict())
        for _ in range(3):
            old.step()
        old.save_checkpoint({})
        with torch.no_grad():
            old_features = old.model.eval().encode(x)[0]  # eval: no power iteration, BatchNorm's running statistics
        old_losses = [{k: v.item() for k, v in old.step().items() if k.endswith("/loss")} for _ in range(2)]
    model, _ = load_run(tmp_path)  # strict: every key of the old checkpoint used
    assert isinstance(model.encoder.body[0], SpectralNormConv2d)
    with torch.no_grad():
        torch.testing.assert_close(model.eval().encode(x)[0], old_features, rtol=1e-5, atol=1e-6)
    train(cfg, tmp_path, max_steps=5)
    resumed = [{k: v for k, v in r.items() if k.endswith("/loss")} for r in read_metrics(tmp_path)]
    assert [r["step"] for r in read_metrics(tmp_path)] == [4, 5]
    for got, want in zip(resumed, old_losses, strict=True):
        assert got.keys() == want.keys()
        for k in want:
            assert got[k] == pytest.approx(want[k], rel=1e-4), k
