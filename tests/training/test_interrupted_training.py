"""A real SIGINT or SIGTERM sent to ``python -m latentprior.cli train|resume|train-prior`` on the digits data: the
current step is finished and checkpointed (verified), the last line of the output is
``interrupted at step N; continue with: latentprior resume DIR``, the exit status is 130 or 143, and ``resume``
ends equal to an uninterrupted twin, loss for loss."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from latentprior.cli import main
from latentprior.config import config_from_dict
from latentprior.rundir import read_metrics
from latentprior.rundir.checkpoints import latest_checkpoint
from latentprior.training import train

pytestmark = pytest.mark.slow

# 15 joint + 8 prior-only steps of digits, a checkpoint every 4 steps, one log line per step
CONFIG = {"data": {"name": "digits"}, "net": {"width": 0.0625}, "prior": {"kind": "realnvp", "layers": 2, "hidden": 16},
          "model": {"latent_dim": 4}, "objective": {"kind": "vae", "beta": 0.0, "lr": 1.0e-3},
          "train": {"epochs": 1, "prior_epochs": 0.5, "batch_size": 100, "log_every": 1, "checkpoint_every": 4,
                    "progress": False, "device": "cpu", "threads": 1}}
LINE = re.compile(r"interrupted at step (\d+); continue with: latentprior resume (.+)")


def _losses(run):
    return [(r["step"], r["phase"], {k: v for k, v in r.items() if k.endswith("/loss")}) for r in read_metrics(run)]


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    root = tmp_path_factory.mktemp("interrupt_twin")
    (root / "c.yaml").write_text(yaml.safe_dump(CONFIG))
    train(config_from_dict(CONFIG), root / "full")
    return root / "c.yaml", _losses(root / "full")


def _start(args: list[str]) -> subprocess.Popen:
    # SIGINT at its default: a shell without job control starts background commands with it ignored
    return subprocess.Popen([sys.executable, "-m", "latentprior.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _logged(run: Path) -> int:
    path = run / "metrics.jsonl"
    return max((json.loads(ln)["step"] for ln in path.read_text().splitlines() if ln.strip()), default=0) \
        if path.exists() else 0


def _signal_after(proc: subprocess.Popen, run: Path, step: int, *signals: int) -> tuple[int, str, str]:
    deadline = time.monotonic() + 240
    while _logged(run) < step and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, f"the run ended before step {step}: {proc.communicate()[1][-2000:]}"
    for sig in signals:
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=240)
    return proc.returncode, out, err


def _check_stopped(rc: int, out: str, err: str, sig: int, run: Path) -> int:
    """The one line, the status, and a verified checkpoint of the step it names; returns that step."""
    assert rc == 128 + sig, err[-3000:]
    assert out == "" and "Traceback" not in err, err[-3000:]
    m = LINE.fullmatch(err.strip().splitlines()[-1])
    assert m and m.group(2) == str(run), err[-3000:]
    step = int(m.group(1))
    index = latest_checkpoint(run)
    assert index["step"] == step  # the interrupted step itself, whether or not it was a checkpoint step
    assert hashlib.sha256((run / "checkpoints" / index["file"]).read_bytes()).hexdigest() == index["sha256"]
    assert _logged(run) == step and not list(run.rglob("*.part"))
    return step


@pytest.mark.parametrize("sig, at", [(signal.SIGINT, 6), (signal.SIGTERM, 17)])  # 17: in the prior-only phase
def test_train_stops_at_a_checkpoint_of_the_current_step_and_resumes_exactly(sig, at, twin, tmp_path):
    config, want = twin
    run = tmp_path / "run"
    step = _check_stopped(*_signal_after(_start(["train", str(config), "--out", str(run)]), run, at, sig), sig, run)
    assert at <= step < 23
    assert main(["resume", str(run)]) == 0
    assert _losses(run) == want


def test_resume_and_train_prior_stop_the_same_way(twin, tmp_path):
    config, want = twin
    run = tmp_path / "run"
    assert main(["train", str(config), "--out", str(run), "--max-steps", "5"]) == 0
    step = _check_stopped(*_signal_after(_start(["resume", str(run)]), run, 9, signal.SIGTERM), signal.SIGTERM, run)
    assert step >= 9
    assert main(["resume", str(run)]) == 0
    assert _losses(run) == want
    # train-prior adds a prior-only epoch (1.5 epochs: round(22.5) = 22 prior steps after the 15 joint ones):
    # stopped in it, the checkpoint holds the new budget and resume finishes it
    before, total = _logged(run), 15 + round(1.5 * 15)
    step = _check_stopped(*_signal_after(_start(["train-prior", str(run), "--epochs", "1"]), run, before + 3,
                                         signal.SIGINT), signal.SIGINT, run)
    assert before + 3 <= step < total
    assert main(["resume", str(run)]) == 0
    assert _logged(run) == total


def test_a_second_ctrl_c_stops_at_once_and_leaves_a_resumable_run(twin, tmp_path):
    config, want = twin
    run = tmp_path / "run"
    rc, out, err = _signal_after(_start(["train", str(config), "--out", str(run)]), run, 5, signal.SIGINT,
                                 signal.SIGINT)
    last = err.strip().splitlines()[-1]
    assert rc == 130 and "Traceback" not in err, err[-3000:]
    # the second signal may land during the checkpoint of the interrupted step (stopped at once) or after it
    assert last.startswith("interrupted again by SIGINT: stopped at once") or LINE.fullmatch(last), last
    assert not list(run.rglob("*.part"))
    assert main(["resume", str(run)]) == 0
    assert _losses(run) == want


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(k) for k in (task / "children").read_text().split()]
        except (OSError, ValueError):
            pass
    return out


def _rank_of(pid: int) -> int | None:
    try:
        env = dict(kv.split("=", 1) for kv in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in kv)
    except OSError:
        return None
    return int(env["RANK"]) if "RANK" in env else None


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds torchrun's workers through /proc")
def test_under_torchrun_a_signal_to_one_rank_stops_all_after_the_same_step_and_rank_0_prints(twin, tmp_path):
    """Only rank 1 gets SIGTERM: the ranks agree on the flag (an all-reduce each step), so both finish the same
    step, rank 0 writes the checkpoint and alone prints the line."""
    config, _ = twin
    run = tmp_path / "run"
    with socket.socket() as port:
        port.bind(("127.0.0.1", 0))
        free = port.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                             f"--master_port={free}", "-m", "latentprior.cli", "train", str(config), "--out", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while _logged(run) < 4 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    workers = {_rank_of(p): p for p in _children(proc.pid)}
    assert proc.poll() is None and set(workers) >= {0, 1}, (workers, proc.poll())
    os.kill(workers[1], signal.SIGTERM)
    out, err = proc.communicate(timeout=240)
    lines = [ln for ln in err.splitlines() if LINE.search(ln)]
    assert len(lines) == 1, err[-4000:]  # rank 0 alone
    step = int(LINE.search(lines[0]).group(1))
    index = latest_checkpoint(run)
    assert index["step"] == step == _logged(run)
    # torchrun itself reports its workers' exit status 143 with a traceback of its own; none comes from our code
    assert not re.search(r'File ".*latentprior/', err), err[-4000:]
    assert "exitcode  : 143" in err
    assert hashlib.sha256((run / "checkpoints" / index["file"]).read_bytes()).hexdigest() == index["sha256"]
    assert len(torch_load_ranks(run)) == 2  # both processes' RNG states, gathered at the interrupted step
    assert main(["resume", str(run)]) == 0 and _logged(run) == 23  # a single process may continue it


def torch_load_ranks(run: Path) -> list:
    index = latest_checkpoint(run)
    return torch.load(run / "checkpoints" / index["file"], weights_only=True)["rng"]["ranks"]
