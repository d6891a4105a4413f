"""A sweep stopped by SIGINT or SIGTERM: its trials get the signal (in-process with ``--local``, cancelled on Ray),
each finishes its step and checkpoints it, ``sweep.json`` records them as ``interrupted`` (not failed), the
driver exits 130 or 143, and rerunning the command continues them to the losses of their uninterrupted twins."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from benchmarks.fault_sweeps import _LONG, _sweep_file
from benchmarks.fault_tools import checkpoint_state, cli, cli_popen, losses

pytestmark = pytest.mark.slow


def _interrupt_sweep(tmp_path: Path, sig: int, local: bool) -> None:
    # two runs with one config: each is the other's uninterrupted twin; 30 steps and no checkpoint before the
    # end but the one the interruption writes
    base = {**_LONG, "train": {**_LONG["train"], "checkpoint_every": 100}}
    sweep = _sweep_file(tmp_path, base=base, models={"a": {}, "b": {}}, retries=0)
    out = tmp_path / "out"
    args = ["sweep", str(sweep), "--out", str(out), "--no-progress", *(["--local"] if local else [])]
    first = out / "runs" / "digits-a"
    proc = cli_popen(args, preexec=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while max(losses(first), default=0) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + sig, err[-3000:]
    assert err.strip().splitlines()[-1].startswith("interrupted: ") and "Traceback" not in err, err[-3000:]
    state = json.loads((out / "sweep.json").read_text())["runs"]
    assert state["digits-a"]["status"] == "interrupted" and state["digits-a"]["attempts"] == 1, state
    assert state["digits-b"]["status"] == "pending", state
    step, intact, _ = checkpoint_state(first)
    assert intact and step == max(losses(first)), (step, max(losses(first)))  # stopped at a checkpoint of its step
    assert 3 <= step < 30
    res = cli(args, timeout=600)  # the same command continues it
    assert res.rc == 0, res.stderr[-3000:]
    state = json.loads((out / "sweep.json").read_text())["runs"]
    assert {n: r["status"] for n, r in state.items()} == {"digits-a": "done", "digits-b": "done"}
    assert state["digits-a"]["result"]["steps"] - state["digits-a"]["result"]["steps_this_session"] == step
    assert losses(first) == losses(out / "runs" / "digits-b") and max(losses(first)) == 30


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_local_sweep_interrupted_records_its_run_and_continues_it(sig, tmp_path):
    _interrupt_sweep(tmp_path, sig, local=True)


def test_a_ray_sweep_cancels_its_trials_at_a_checkpoint_and_continues_them(tmp_path):
    _interrupt_sweep(tmp_path, signal.SIGTERM, local=False)
