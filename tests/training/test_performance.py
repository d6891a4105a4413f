"""Speed options keep the results: autocast (bf16, fp16), channels_last, compile; the loop's wiring of them.

Tolerances, relative to fp32, on the first 3 steps of a small VAE + flow at beta = 1 on digits (observed in
brackets; 2e-3, 2e-4 and 9e-5 with nets twice as wide): bf16 autocast 1e-2 (1.6e-3 on the prior loss; bf16
keeps 8 significant bits), channels_last 1e-3 (4e-6: another summation order in the convolutions, which Adam
amplifies in near-zero gradient elements). fp16 is compared on the first loss only, 1e-3 (4e-5): its
GradScaler starts at 2**16 and skips the first steps while it calibrates, so later steps differ by design.
torch.compile is checked by ``benchmarks/throughput.py --check-compile`` instead: compiling even this small
model takes ~2 minutes on 2 busy CPU cores (there the CPU preset's first 3 losses matched eager to 8e-6).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from latentprior.config import config_from_dict
from latentprior.data import load_dataset
from latentprior.models import build_model
from latentprior.models.load import load_run
from latentprior.rundir import read_metrics
from latentprior.rundir.checkpoints import CheckpointError
from latentprior.training import train
from latentprior.training.distributed import GlobalBatchNorm, convert_global_batchnorm
from latentprior.training.performance import prepare_model, step_options
from latentprior.training.run import open_run


def _cfg(**train_kw):
    return config_from_dict({
        "data": {"name": "digits"}, "net": {"width": 0.0625}, "model": {"latent_dim": 8},
        "prior": {"kind": "realnvp", "layers": 2, "hidden": 32}, "objective": {"kind": "vae", "beta": 1.0, "lr": 1e-3},
        "train": {"batch_size": 100, "epochs": 0.2, "log_every": 1, "progress": False, "threads": 1, **train_kw},
    })


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "train")


def _first_losses(digits, steps: int = 3, **train_kw) -> list[dict[str, float]]:
    """Losses of the first steps of the training loop's step (``Run.step``)."""
    run = open_run(_cfg(**train_kw), None, data=digits)
    torch.manual_seed(1)  # the same reparameterisation noise in every variant
    out = [{k: v.item() for k, v in run.step().items() if k.endswith("/loss")} for _ in range(steps)]
    assert all(p.dtype == torch.float32 for p in run.model.parameters())  # autocast never touches the weights
    return out


@pytest.mark.parametrize("variant, rel", [({"amp": "bf16", "channels_last": False}, 1e-2),
                                          ({"channels_last": True}, 1e-3)])
def test_first_losses_match_fp32(digits, variant, rel):
    ref, got = _first_losses(digits, channels_last=False), _first_losses(digits, **variant)
    for step, (a, b) in enumerate(zip(ref, got, strict=True)):
        for k in a:
            assert b[k] == pytest.approx(a[k], rel=rel), f"{variant} step {step} {k}: {b[k]} vs {a[k]}"
    # not trivially equal: the arithmetic (amp) or the summation order (channels_last) did change
    assert any(a[k] != b[k] for a, b in zip(ref, got, strict=True) for k in a)


@pytest.mark.slow
def test_fp16_first_loss_matches_and_the_scaler_calibrates(digits):
    ref, got = _first_losses(digits, steps=2), _first_losses(digits, steps=2, amp="fp16")
    for k in ref[0]:
        assert got[0][k] == pytest.approx(ref[0][k], rel=1e-3)
    assert all(torch.isfinite(torch.tensor(v)) for r in got for v in r.values())


def test_step_options_follow_the_config():
    cpu = torch.device("cpu")
    assert step_options(_cfg().train, cpu).autocast is None
    assert step_options(_cfg(amp="bf16").train, cpu).autocast is torch.bfloat16
    fp16 = step_options(_cfg(amp="fp16").train, cpu)
    assert fp16.autocast is torch.float16 and fp16.scaler is not None  # fp16 gradients need loss scaling


def test_train_with_speed_options_writes_a_plain_checkpoint(tmp_path):
    run = tmp_path / "run"
    summary = train(_cfg(amp="bf16", channels_last=True), run)
    assert summary["step"] == 3
    assert all(torch.isfinite(torch.tensor(r["autoencoder/loss"])) for r in read_metrics(run))
    model, cfg = load_run(run)  # rebuilt without the options: same keys, fp32 weights
    assert cfg.train.amp == "bf16" and all(p.dtype == torch.float32 for p in model.parameters())
    # compile may change when a run is resumed; channels_last may differ but the run keeps its own (it changes
    # the rounding); amp may not (it changes the arithmetic)
    train(_cfg(amp="bf16", channels_last=False, epochs=0.27), run)
    assert load_run(run)[1].train.channels_last is True
    with pytest.raises(CheckpointError, match="train.amp"):
        train(_cfg(amp="off", epochs=0.34), run)


def test_compile_keeps_state_dict_keys_and_routes_every_net_through_torch_compile(digits, monkeypatch):
    # torch.compile is replaced by a recorder (compiling for real takes minutes on the CPU): what is checked is
    # that the calls the objectives make reach the compiled callables.
    called = []

    def recording_compile(fn, *args, **kwargs):
        def compiled(*a, **kw):
            called.append(fn.__self__)  # fn is the module's bound _call_impl
            return fn(*a, **kw)
        return compiled

    monkeypatch.setattr(torch, "compile", recording_compile)
    cfg = _cfg(compile=True)
    model = build_model(cfg, digits.image_shape)
    keys = list(model.state_dict())
    prepare_model(model, cfg.train)
    assert list(model.state_dict()) == keys
    mean, _ = model.encode(digits.batch(torch.arange(4)))
    model.decode(mean)
    model.prior.log_prob(mean)
    assert any(m is model.encoder for m in called) and any(m is model.decoder for m in called)
    assert any(m is not model.prior and any(m is p for p in model.prior.modules()) for m in called)


def test_global_batchnorm_is_batchnorm_outside_a_process_group(digits):
    torch.manual_seed(0)
    model = build_model(_cfg(), digits.image_shape)
    params, keys = {id(p) for p in model.parameters()}, list(model.state_dict())
    x = digits.batch(torch.arange(32))
    ref = model.decode(model.encode(x)[0])
    converted = convert_global_batchnorm(model)
    assert any(isinstance(m, GlobalBatchNorm) for m in converted.modules())
    assert not any(type(m) in (nn.BatchNorm1d, nn.BatchNorm2d) for m in converted.modules())
    assert {id(p) for p in converted.parameters()} == params and list(converted.state_dict()) == keys
    torch.testing.assert_close(converted.decode(converted.encode(x)[0]), ref)
