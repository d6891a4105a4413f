"""Speed options that must not change what a step computes: Adam's implementation flags, the captured step
(training/cuda_graphs.py), and fractional GPUs per sweep trial.

The captured step's exactness needs a GPU (``test_captured_step_matches_eager_on_cuda``, skipped without CUDA);
on the CPU the same bookkeeping runs with capture disabled and must be bit-identical to the plain step.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
import torch

from latentprior.config import ConfigError, config_from_dict
from latentprior.data import load_dataset
from latentprior.objectives import AdamImpl
from latentprior.training.cuda_graphs import WARMUP, GraphedStep
from latentprior.training.performance import adam_impl, use_cuda_graphs
from latentprior.training.run import open_run

CUDA = torch.device("cuda")
CPU = torch.device("cpu")


def _cfg(kind: str = "vae", **train_kw):
    prior = {"kind": "realnvp", "layers": 2, "hidden": 32} if kind == "vae" else {"kind": "adversarial", "layers": 1,
                                                                                  "hidden": 32}
    return config_from_dict({
        "data": {"name": "digits"}, "net": {"width": 0.0625}, "model": {"latent_dim": 8}, "prior": prior,
        "objective": {"kind": kind, "beta": 1.0, "lr": 1e-3},
        # digits: 1500 images, 15 steps per epoch: 5 joint steps, then 5 prior-only steps
        "train": {"batch_size": 100, "epochs": 1 / 3, "prior_epochs": 1 / 3, "log_every": 1, "progress": False,
                  "threads": 1, **train_kw},
    })


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "train")


def test_cuda_graphs_auto_is_off_on_the_cpu_and_on_refuses_with_one_line():
    assert use_cuda_graphs(_cfg().train, CPU, False) is False
    assert use_cuda_graphs(_cfg().train, CUDA, False) is True  # a device object only: nothing runs on it
    assert use_cuda_graphs(_cfg(amp="fp16").train, CUDA, False) is False
    assert use_cuda_graphs(_cfg().train, CUDA, True) is False
    assert use_cuda_graphs(_cfg(cuda_graphs="off").train, CUDA, False) is False
    for tc, device, multi, why in ((_cfg(cuda_graphs="on").train, CPU, False, "not CUDA"),
                                   (_cfg(cuda_graphs="on", amp="fp16").train, CUDA, False, "GradScaler"),
                                   (_cfg(cuda_graphs="on").train, CUDA, True, "multi-process")):
        with pytest.raises(ConfigError, match=why) as e:
            use_cuda_graphs(tc, device, multi)
        assert "\n" not in str(e.value)


def test_adam_flags_follow_the_config_and_the_device():
    assert adam_impl(_cfg().train, CPU, False) == AdamImpl(fused=True)  # the default: fused, CPU and CUDA
    assert adam_impl(_cfg().train, CUDA, True) == AdamImpl(fused=True, capturable=True)
    # auto keeps the meaning it had when runs recorded it: the per-parameter loop on the CPU, fused on CUDA
    assert adam_impl(_cfg(adam_impl="auto").train, CPU, False) == AdamImpl()
    assert adam_impl(_cfg(adam_impl="auto").train, CUDA, False) == AdamImpl(fused=True)
    assert adam_impl(_cfg(adam_impl="foreach").train, CPU, False) == AdamImpl(foreach=True)
    assert adam_impl(_cfg(adam_impl="loop").train, CPU, False) == AdamImpl()


def _losses_and_params(run, steps):
    losses = [{k: v.item() for k, v in run.step().items() if k.endswith("/loss")} for _ in range(steps)]
    return losses, [p.detach().clone() for p in run.model.parameters()]


@pytest.mark.parametrize("kind", ["vae", "aae"])
def test_capture_disabled_graphed_step_is_bit_identical_to_the_plain_step(digits, kind):
    # 10 steps: warm-up, record and replays in the joint phase, then a new phase (a second "graph"); halving
    # the learning rate mid-phase must start a new warm-up and record (a captured graph bakes the rate in).
    plain, graphed = open_run(_cfg(kind), None, data=digits), open_run(_cfg(kind), None, data=digits)
    graphed.graphed = GraphedStep(graphed.objective, capture=False)
    torch.manual_seed(3)
    ref = _losses_and_params(plain, 7)
    plain.objective.set_lr_scale(0.5)
    ref2 = _losses_and_params(plain, 3)
    torch.manual_seed(3)
    got = _losses_and_params(graphed, 7)
    graphed.objective.set_lr_scale(0.5)
    got2 = _losses_and_params(graphed, 3)
    assert got[0] == ref[0] and got2[0] == ref2[0]
    for a, b in zip(ref[1] + ref2[1], got[1] + got2[1], strict=True):
        assert torch.equal(a, b)
    # joint: 3 warm-up steps, recorded at step 4; prior: 2 warm-up steps only; lr change: its own warm-up
    assert graphed.graphed.captures == 1 and len(graphed.graphed.eager_steps) == 3
    assert plain.phase == graphed.phase == "prior"


def test_metrics_of_a_replayed_step_are_not_overwritten_by_the_next(digits):
    run = open_run(_cfg(), None, data=digits)
    step = GraphedStep(run.objective, capture=False)
    x = run.data.batch(torch.arange(100))
    outs = [step(x, "joint") for _ in range(WARMUP + 3)]
    values = [o["autoencoder/loss"].item() for o in outs]
    assert len(set(values)) == len(values)  # each step trained: every loss differs, none aliases the next


def test_resumed_optimizer_takes_this_process_flags(digits):
    saver = open_run(_cfg(adam_impl="fused"), None, data=digits)
    saver.step()
    state = saver.objective.state_dict()
    loader = open_run(_cfg(adam_impl="loop"), None, data=digits)
    loader.objective.load_state_dict(state)
    for opt in loader.objective.optimizers.values():
        for pg in opt.param_groups:
            assert (pg["fused"], pg["foreach"], pg["capturable"]) == (False, False, False)
    loader.step()  # the per-parameter loop runs on the loaded (fused-format) state


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("kind", ["vae", "aae"])
def test_captured_step_matches_eager_on_cuda(digits, kind):
    # Eager with the same Adam flags as the captured run (fused, capturable), so only capture differs.
    eager = open_run(_cfg(kind, device="cuda", cuda_graphs="off", adam_impl="fused"), None, data=digits)
    eager.objective.configure(AdamImpl(fused=True, capturable=True), eager.objective.step_options)
    captured = open_run(_cfg(kind, device="cuda", cuda_graphs="on"), None, data=digits)
    assert captured.graphed is not None
    torch.manual_seed(5)
    ref = _losses_and_params(eager, 10)
    torch.manual_seed(5)
    got = _losses_and_params(captured, 10)
    assert captured.graphed.captures == 2  # the joint and the prior phase were both replayed
    for a, b in zip(ref[0], got[0], strict=True):
        for k in a:
            assert b[k] == pytest.approx(a[k], rel=1e-5, abs=1e-6), k
    for a, b in zip(ref[1], got[1], strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- fractional GPUs per trial


def stamp_trial(payload):
    """A trial that waits (up to 60 s) until both trials have started, so that a worker slow to start on a busy
    machine cannot make concurrent trials look sequential; records what Ray gave it; writes its eval."""
    import ray

    start, arrived = time.time(), Path(payload["run_dir"]).parents[1] / "arrived"
    arrived.mkdir(exist_ok=True)
    (arrived / payload["name"]).touch()
    while len(list(arrived.iterdir())) < 2 and time.time() - start < 60:
        time.sleep(0.05)
    d = Path(payload["run_dir"]) / "eval"
    d.mkdir(parents=True, exist_ok=True)
    for m in payload["eval"]["metrics"]:
        (d / f"{m}.json").write_text(json.dumps({"value": 1.0, "protocol": "fake"}))
    return {"start": start, "end": time.time(), "pid": os.getpid(),
            "assigned": ray.get_runtime_context().get_assigned_resources()}


@pytest.mark.slow
def test_fractional_gpu_trials_share_one_gpu_concurrently(tmp_path):
    """resources.gpus_per_trial 0.5 on a Ray cluster of one (declared) GPU: two trials run at once, each holding
    half of it. Ray only counts the resource here; sharing a real GPU is benchmarks/sweep_throughput.py's job."""
    ray = pytest.importorskip("ray")
    from latentprior.rundir.sweep_state import SweepState
    from latentprior.sweeps import run_sweep, sweep_from_dict

    spec = sweep_from_dict({
        "name": "halves", "base": _cfg_dict(), "grid": {"train.seed": [0, 1]}, "eval": {"metrics": ["fid"], "n": 10},
        "resources": {"cpus_per_trial": 1, "gpus_per_trial": 0.5, "threads": 1, "max_concurrent": 2}},
        Path(__file__).resolve().parents[2] / "configs")
    path = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))  # workers import this module
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False,
             object_store_memory=128 * 2**20, runtime_env={"env_vars": {"PYTHONPATH": path}})
    try:
        result = run_sweep(spec, tmp_path, trial_fn=stamp_trial, progress=False)
    finally:
        ray.shutdown()
    assert result["done"] == 2 and result["failed"] == []
    a, b = (rec["result"] for rec in SweepState.open(tmp_path).runs.values())
    assert a["assigned"]["GPU"] == b["assigned"]["GPU"] == 0.5 and a["pid"] != b["pid"]
    assert a["start"] < b["end"] and b["start"] < a["end"]  # the two trials overlapped in time


def _cfg_dict():
    return {"data": {"name": "digits"}, "net": {"width": 0.0625}, "model": {"latent_dim": 8},
            "prior": {"kind": "realnvp", "layers": 2, "hidden": 16}, "objective": {"kind": "vae", "lr": 1e-3},
            "train": {"epochs": 0.2, "batch_size": 100, "progress": False}}
