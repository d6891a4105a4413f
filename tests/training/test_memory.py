"""The memory estimate of a run (training/memory.py): the parameter counts it gets without allocating equal those of
the real model for every prior kind, a config no machine can hold is refused in one line within seconds, and
``train.max_memory_gb`` moves or removes the limit."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch

from latentprior.config import Config, apply_overrides
from latentprior.models import build_model
from latentprior.training import memory
from latentprior.training.memory import MemoryBudgetError, check_memory, estimate_memory

SMALL = ["net.width=0.0625", "prior.layers=2", "prior.hidden=16", "prior.disc_hidden=16", "model.latent_dim=6"]
KINDS = {
    "realnvp": [], "glow": ["prior.kind=glow"], "maf": ["prior.kind=maf"], "nsf": ["prior.kind=nsf", "prior.bins=5"],
    "gmm": ["prior.kind=gmm", "prior.components=3"], "vamp": ["prior.kind=vamp", "prior.components=3"],
    "aae": ["prior.kind=adversarial", "objective.kind=aae", "model.encoder=deterministic"],
    "factorvae": ["prior.kind=normal", "objective.kind=factorvae"],
    "infogan": ["net.arch=infogan"], "resnet": ["net.arch=resnet"],
    "conditional": ["data.condition=skeleton", "net.arch=unet", "objective.kind=cvae"],
}


def _real(cfg, shape):
    model = build_model(cfg, shape)
    params = list(model.parameters())
    return (sum(p.numel() for p in params),
            sum(t.numel() * t.element_size() for t in [*params, *model.buffers()]),
            sum(p.numel() * p.element_size() for p in params if p.requires_grad))


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_estimate_counts_what_the_real_model_allocates(kind):
    cfg = apply_overrides(Config(), SMALL + KINDS[kind])
    shape = (1, 28, 28)
    est = estimate_memory(cfg, shape, n_images=10)
    assert (est.parameters, est.weights, est.trainable) == _real(cfg, shape)
    assert est.images == 10 * 28 * 28


@pytest.mark.parametrize("kind", ["maf", "nsf"])
def test_modules_meta_cannot_build_are_extrapolated_exactly(kind, monkeypatch):
    # zuko's masks need values: the estimate builds D = 2, 3, 4 on the CPU and extrapolates; at D = 11 it must
    # still be the exact count (a polynomial of degree 2 in D is determined by three points)
    cfg = apply_overrides(Config(), [*SMALL, *KINDS[kind], "model.latent_dim=11"])
    with pytest.raises(NotImplementedError):
        memory._build_on_meta(cfg, (1, 28, 28))
    before = torch.get_rng_state()
    est = estimate_memory(cfg, (1, 28, 28))
    assert torch.equal(torch.get_rng_state(), before)  # building the small copies drew no numbers from the run's RNG
    assert (est.parameters, est.weights, est.trainable) == _real(cfg, (1, 28, 28))


def test_a_huge_latent_space_is_refused_before_anything_is_allocated(monkeypatch):
    monkeypatch.setattr(memory, "_ram", lambda: 16 * 2**30)
    cfg = apply_overrides(Config(), ["model.latent_dim=100000"])
    t0 = time.perf_counter()
    with pytest.raises(MemoryBudgetError) as e:
        check_memory(cfg, (1, 28, 28), 60000, torch.device("cpu"))
    assert time.perf_counter() - t0 < 10
    message = str(e.value)
    assert "\n" not in message and "model.latent_dim is 100000" in message and "train.max_memory_gb" in message
    assert "more than the 14.4 GiB allowed (90% of this machine's RAM 16 GiB)" in message
    assert estimate_memory(cfg, (1, 28, 28)).parameters > 5e9


def test_the_limit_is_the_config_key_when_set_and_0_turns_the_check_off(monkeypatch):
    monkeypatch.setattr(memory, "_ram", lambda: 2**50)  # a machine with room for anything
    tiny = apply_overrides(Config(), SMALL)
    check_memory(tiny, (1, 28, 28), 1500, torch.device("cpu"))
    with pytest.raises(MemoryBudgetError, match=r"allowed \(train.max_memory_gb = 0.001\)"):
        check_memory(tiny.replace(**{"train.max_memory_gb": 0.001}), (1, 28, 28), 1500, torch.device("cpu"))
    monkeypatch.setattr(memory, "_ram", lambda: 2**20)  # 1 MiB: nothing fits
    with pytest.raises(MemoryBudgetError):
        check_memory(tiny, (1, 28, 28), 1500, torch.device("cpu"))
    check_memory(tiny.replace(**{"train.max_memory_gb": 0}), (1, 28, 28), 1500, torch.device("cpu"))


def test_each_local_torchrun_process_counts_on_the_cpu(monkeypatch):
    tiny = apply_overrides(Config(), SMALL)
    est = estimate_memory(tiny, (1, 28, 28), 1500)
    one = est.states + est.images + est.checkpoint
    monkeypatch.setattr(memory, "_ram", lambda: int((one + est.states + est.images) / 0.9) + 1024)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    check_memory(tiny, (1, 28, 28), 1500, torch.device("cpu"))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")
    with pytest.raises(MemoryBudgetError):
        check_memory(tiny, (1, 28, 28), 1500, torch.device("cpu"))


@pytest.mark.slow
def test_the_cli_refuses_a_huge_model_in_one_line_within_seconds(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {name: digits}\nmodel: {latent_dim: 100000}\ntrain: {progress: false, device: cpu}\n")
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "latentprior.cli", "train", str(cfg), "--out", str(tmp_path / "r"),
                           "--set", "train.max_memory_gb=20"], capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - t0
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith("error: this config needs an estimated ") and "model.latent_dim is 100000" in lines[0]
    assert seconds < 60  # torch's import and the digits; the 9e9-parameter model is never allocated
    assert not (tmp_path / "r" / "checkpoints").exists()
