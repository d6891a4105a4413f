"""Aggregate training throughput of N concurrent trials sharing one GPU (one process per trial, as a sweep's
Ray workers with ``resources: {gpus_per_trial: 1/N}`` run them).

    python benchmarks/sweep_throughput.py [--n 1,2,4,8] [--seconds 15] [--config configs/mnist_vae_flow.yaml]

Each N starts N worker processes (this script with ``--worker``). Every worker builds its run (the config's
defaults: on CUDA fused Adam and captured steps), takes warm-up steps, waits at a barrier until all N are ready,
then counts steps for ``--seconds``; the aggregate is the sum of the workers' images/s over the same window. A
reference row, one eager trial (``train.cuda_graphs: off``), comes first. The last line is
``aggregate_vs_one_eager=<ratio>`` for the largest N.

Without CUDA it is a smoke mode: the CPU preset, N in {1, 2}, one thread per worker (what a CPU sweep runs).
Where several processes share a GPU, CUDA MPS (``nvidia-cuda-mps-control -d``) lets their kernels run at the
same time instead of time-sliced; this script measures whichever the machine is set up with.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import ROOT, format_table, machine_lines, open_train_run, setup_device, train_images

WARM_STEPS = 8  # past the captured step's warm-up and capture (training/cuda_graphs.py)


def worker(args: argparse.Namespace) -> None:
    """One trial: build, warm up, wait for the others, time steps; print one JSON line."""
    device = setup_device(args.device, args.threads)
    data, _ = train_images("mnist", device)
    run = open_train_run(args.config, data, device, **json.loads(args.overrides))
    for _ in range(WARM_STEPS):
        run.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    barrier = Path(args.barrier)
    (barrier / f"ready{args.rank}").touch()
    while len(list(barrier.glob("ready*"))) < int(args.n):
        time.sleep(0.01)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < args.seconds:
        for _ in range(10):  # check the clock every 10 steps: a clock read is cheap, a sync is not
            run.step()
        steps += 10
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    wall = time.perf_counter() - t0
    print(json.dumps({"rank": args.rank, "images_per_s": steps * run.cfg.train.batch_size / wall, "wall_s": wall}))


def measure(n: int, args: argparse.Namespace, overrides: dict) -> dict:
    """N workers at once; their images/s summed."""
    with tempfile.TemporaryDirectory() as barrier:
        cmd = [sys.executable, __file__, "--worker", "--n", str(n), "--barrier", barrier, "--config", args.config,
               "--seconds", str(args.seconds), "--device", args.device, "--overrides", json.dumps(overrides)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        procs = [subprocess.Popen([*cmd, "--rank", str(r)], stdout=subprocess.PIPE, text=True, cwd=ROOT / "benchmarks")
                 for r in range(n)]
        outs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit(f"a worker of N={n} failed (exit codes {[p.returncode for p in procs]})")
    rates = [json.loads(o.strip().splitlines()[-1])["images_per_s"] for o in outs]
    return {"trials": n, "aggregate images/s": sum(rates), "per trial images/s": sum(rates) / n,
            "slowest trial": min(rates)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", help="comma-separated trial counts (default 1,2,4,8 on CUDA, 1,2 on the CPU)")
    p.add_argument("--seconds", type=float, default=15.0, help="timed window per N")
    p.add_argument("--config", help="default: configs/mnist_vae_flow.yaml on CUDA, the CPU preset otherwise")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, help="torch CPU threads per worker (default: 1 on the CPU)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--rank", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--barrier", help=argparse.SUPPRESS)
    p.add_argument("--overrides", default="{}", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    device = setup_device(args.device, None)
    cuda = device.type == "cuda"
    args.device = str(device)
    args.config = args.config or ("configs/mnist_vae_flow.yaml" if cuda else "configs/cpu/mnist_vae_flow.yaml")
    args.threads = args.threads or (None if cuda else 1)
    counts = [int(x) for x in (args.n or ("1,2,4,8" if cuda else "1,2")).split(",")]
    print("\n".join(machine_lines(device)))
    if not cuda:
        print("no CUDA device: smoke mode on the CPU (N trials share the CPU cores, not a GPU)")
    rows = [{"variant": "eager (one trial, reference)", **measure(1, args, {"train.cuda_graphs": "off"})}]
    rows += [{"variant": "defaults", **measure(n, args, {})} for n in counts]
    ref = rows[0]["aggregate images/s"]
    for r in rows:
        r["x one eager"] = r["aggregate images/s"] / ref
    print(f"# {args.config}; {args.seconds:g} s timed per N after {WARM_STEPS} warm-up steps; one process per trial")
    print(format_table(rows, ["variant", "trials", "aggregate images/s", "per trial images/s", "slowest trial",
                              "x one eager"]))
    print(f"aggregate_vs_one_eager={rows[-1]['x one eager']:.3f} (N={rows[-1]['trials']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
