"""Data-parallel training: 2 gloo processes on the CPU compute the losses of one process with the same global batch.

How the comparison is made exact: with ``train.sync_bn`` BatchNorm uses the global batch's statistics, and the
gradients are averaged per update, so only the random noise differs between the runs (each process draws its
own, by design). The test replaces the noise, in both runs, by draws for the *global* batch from a generator
seeded by a call counter, of which each process keeps its rows; the two runs then compute the same function
and must agree to floating-point summation order. In float64 the gradients every optimizer sees agree to 1e-10
of their scale (rounding is ~1e-16; any logic difference would show at 1e-3 or more). In float32, through
``train``, the logged losses agree to 1e-3 over a few steps: BatchNorm's backward cancels large terms, so
gradients differ by up to ~3e-5 of their scale, and Adam turns such differences in near-zero gradient
elements into parameter differences of order lr (seen: 7e-5 relative on the AAE discriminator loss after 4
steps, under 2e-7 on every VAE loss).
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from latentprior.config import config_from_dict
from latentprior.data import load_dataset
from latentprior.models import build_model
from latentprior.models.autoencoder import LatentAutoencoder
from latentprior.models.load import load_run
from latentprior.priors.base import Prior
from latentprior.rundir import read_metrics
from latentprior.rundir.checkpoints import load_checkpoint
from latentprior.training import loop as loop_module
from latentprior.training import train
from latentprior.training.distributed import init_from_env
from latentprior.training.run import open_run

ROOT = Path(__file__).resolve().parents[2]
WORLD = 2
pytestmark = pytest.mark.skipif(not dist.is_available(), reason="this torch build has no torch.distributed")

CASES = {
    # VAE + flow at beta = 1 (the prior's gradient reaches the encoder), joint then prior-only steps
    "vae_flow": ({"objective": {"kind": "vae", "beta": 1.0, "lr": 1e-3},
                  "prior": {"kind": "realnvp", "layers": 2, "hidden": 32}}, {"epochs": 0.2, "prior_epochs": 0.14}),
    # AAE: encoder/decoder, adversarial prior (with BatchNorm) and discriminator updates
    "aae_adv": ({"objective": {"kind": "aae", "beta": 1.0, "lr": 1e-3},
                 "prior": {"kind": "adversarial", "layers": 1, "hidden": 32, "disc_layers": 1, "disc_hidden": 32}},
                {"epochs": 0.27, "prior_epochs": 0}),
}


def _cfg(name: str, sync_bn: bool = True, **train):
    sections, train_kw = CASES[name]
    return config_from_dict({
        "data": {"name": "digits"}, "net": {"width": 0.0625}, "model": {"latent_dim": 8}, **sections,
        "train": {"batch_size": 100, "log_every": 1, "checkpoint_every": 1000, "progress": False, "threads": 1,
                  "sync_bn": sync_bn, **train_kw, **train},
    })


# The float32 trajectories of one and two processes are compared in NCHW: channels_last's convolution kernels sum
# a weight gradient in another order per shard size, and Adam amplifies that past the weights' 1e-5 tolerance in
# near-zero elements. The float64 gradient test keeps the default layout (channels_last).
TRAJECTORY = {"channels_last": False}


class _GlobalNoise:
    """Standard-normal noise for the global batch, from a generator seeded by a call counter; rows of this rank."""

    def __init__(self, rank: int, world: int) -> None:
        self.rank, self.world, self.calls = rank, world, 0

    def draw(self, n: int, dim: int, like: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        eps = torch.randn(n * self.world, dim, generator=torch.Generator().manual_seed(self.calls))
        return eps[self.rank * n:(self.rank + 1) * n].to(like)

    def install(self, setattr_) -> None:
        base_noise = Prior.base_noise

        def posterior_sample(model, mean, logvar):
            return mean if logvar is None else mean + torch.exp(0.5 * logvar) * self.draw(*mean.shape, mean)

        def prior_noise(prior, n, dim, generator=None):
            if generator is not None:  # sample grids keep their own generator
                return base_noise(prior, n, dim, generator)
            return self.draw(n, dim, base_noise(prior, 0, dim))  # no draw: the prior's dtype and device

        setattr_(LatentAutoencoder, "posterior_sample", posterior_sample)
        setattr_(Prior, "base_noise", prior_noise)


def _capture_runs(setattr_) -> list:
    """Keep every run train() opens, to compare the replicas afterwards."""
    runs, opener = [], loop_module.open_run

    def capture(*args, **kwargs):
        runs.append(opener(*args, **kwargs))
        return runs[-1]

    setattr_(loop_module, "open_run", capture)
    return runs


class _Float64Images:
    """The training images as float64 batches, for a run whose model was cast to float64."""

    def __init__(self, data) -> None:
        self.data = data

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        return self.data.batch(idx).double()


def _one_step_grads_f64(name: str) -> dict[str, list[torch.Tensor]]:
    """The gradient each optimizer steps with in the run's first step, in float64, on this process's shard."""
    run = open_run(_cfg(name), None, data=load_dataset("digits", "train"))
    run.model.double()  # in place: the optimizers keep the same Parameter objects
    run.data = _Float64Images(run.data)
    run.step()
    # groups are disjoint and each update zeroes only its own: every group still holds its update's gradient
    return {k: [p.grad.clone() for p in params] for k, params in run.objective.groups.items() if params}


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(WORLD), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    ctx = init_from_env()  # the code path `torchrun ... latentprior.cli train` takes
    assert ctx.world_size == WORLD and ctx.rank == rank
    runs = _capture_runs(setattr)
    try:
        for name in CASES:
            _GlobalNoise(rank, WORLD).install(setattr)
            torch.save(_one_step_grads_f64(name), Path(out) / f"{name}.grads{rank}.pt")
        _GlobalNoise(rank, WORLD).install(setattr)
        for name, sync in [(name, True) for name in CASES] + [("vae_flow", False)]:
            tag = name + ("" if sync else "_local_bn")
            summary = train(_cfg(name, sync, **TRAJECTORY), Path(out) / tag)
            torch.save({"state": runs[-1].model.state_dict(), "summary": summary}, Path(out) / f"{tag}.rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _losses(run_dir: Path) -> list[dict[str, float]]:
    return [{k: v for k, v in r.items() if k.endswith("/loss")} for r in read_metrics(run_dir)]


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=True)
    return out


@pytest.mark.slow
def test_gradients_equal_the_global_batch_gradient_float64(ddp_runs, monkeypatch):
    for name in CASES:
        _GlobalNoise(0, 1).install(monkeypatch.setattr)
        ref = _one_step_grads_f64(name)
        groups = ["autoencoder", "prior", "discriminator"] if name == "aae_adv" else ["autoencoder", "prior"]
        assert list(ref) == groups
        for rank in range(WORLD):
            got = torch.load(ddp_runs / f"{name}.grads{rank}.pt", weights_only=True)
            for group, grads in ref.items():
                scale = max(g.abs().max().item() for g in grads)
                assert scale > 0
                for i, (a, b) in enumerate(zip(grads, got[group], strict=True)):
                    torch.testing.assert_close(b, a, rtol=0, atol=1e-10 * scale, msg=f"{name} {group} #{i} rank {rank}")


def test_two_processes_train_like_one_process_with_the_same_global_batch(ddp_runs, tmp_path, monkeypatch):
    _GlobalNoise(0, 1).install(monkeypatch.setattr)
    for name in CASES:
        ref = train(_cfg(name, **TRAJECTORY), tmp_path / name)
        assert ref["world_size"] == 1
        a, b = _losses(tmp_path / name), _losses(ddp_runs / name)
        assert len(a) == len(b) == ref["step"] >= 4
        assert {"autoencoder/loss", "prior/loss"} <= set(a[0])
        for step, (ra, rb) in enumerate(zip(a, b, strict=True), 1):
            assert ra.keys() == rb.keys()
            for k in ra:
                assert rb[k] == pytest.approx(ra[k], rel=1e-3), f"{name} step {step} {k}"
        if name == "vae_flow":  # rank 0's checkpoint is the single-process model, BatchNorm statistics included
            ma, mb = load_run(tmp_path / name)[0], load_run(ddp_runs / name)[0]
            for (k, va), vb in zip(ma.state_dict().items(), mb.state_dict().values(), strict=True):
                assert torch.allclose(va.float(), vb.float(), rtol=1e-3, atol=1e-5), f"{name}: {k}"


def test_replicas_stay_identical(ddp_runs):
    for tag in [*CASES, "vae_flow_local_bn"]:
        r0, r1 = (torch.load(ddp_runs / f"{tag}.rank{r}.pt", weights_only=True) for r in range(WORLD))
        for k, v in r0["state"].items():
            assert torch.equal(v, r1["state"][k]), f"{tag}: {k} differs between the processes"
        assert r0["summary"]["world_size"] == WORLD
        saved = load_run(ddp_runs / tag)[0].state_dict()  # rank 0's checkpoint holds the trained replica
        assert saved.keys() == r0["state"].keys() and all(torch.equal(saved[k], v) for k, v in r0["state"].items())
    # per-replica BatchNorm: a different computation from the global batch's (the losses differ), still finite
    local, synced = _losses(ddp_runs / "vae_flow_local_bn"), _losses(ddp_runs / "vae_flow")
    assert all(math.isfinite(v) for r in local for v in r.values())
    assert local[0]["autoencoder/loss"] != synced[0]["autoencoder/loss"]


@pytest.mark.slow  # three more interpreters importing torch: ~15 s
def test_torchrun_cli(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text((ROOT / "configs" / "default.yaml").read_text())
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={WORLD}",
           f"--master_port={_free_port()}", "-m", "latentprior.cli", "train", str(cfg), "--out",
           str(tmp_path / "run"), "--max-steps", "2", "--set", "net.width=0.0625", "--set", "prior.layers=2",
           "--set", "train.progress=false", "--set", "train.sync_bn=true"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = [json.loads(ln) for ln in done.stdout.splitlines() if ln.startswith("{")]
    assert len(printed) == 1 and printed[0]["world_size"] == WORLD and printed[0]["step"] == 2  # rank 0 alone
    # the checkpoint holds the trained model: every autoencoder parameter moved from its seeded initial value
    model, cfg = load_run(tmp_path / "run")
    torch.manual_seed(cfg.train.seed)
    init = build_model(cfg, tuple(load_checkpoint(tmp_path / "run")["image_shape"]))
    moved = [not torch.equal(a, b) for a, b in zip(init.autoencoder_parameters(), model.autoencoder_parameters(),
                                                   strict=True)]
    assert moved and all(moved)
