"""Commands other than training, interrupted by a real SIGINT or SIGTERM: one line, exit 130 or 143, and no
partial file (``eval`` leaves no eval record, no ``.part`` temporary, no ``tb/.hparams.<pid>`` folder)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "run_0_1_0"


def _torch_loaded(pid: int) -> bool:
    """Whether the process has mapped libtorch: the verb runs, under the CLI's signal handlers."""
    try:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc to see the command start")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_eval_interrupted_mid_metric_leaves_no_partial_file(sig, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    shutil.rmtree(run / "eval")
    before = sorted(str(p.relative_to(run)) for p in run.rglob("*"))
    # ~30 s of importance sampling on one thread: the signal lands in the middle of it
    proc = subprocess.Popen([sys.executable, "-m", "latentprior.cli", "eval", str(run), "--metrics", "nll", "--n",
                             "297", "--nll-k", "3000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not _torch_loaded(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(3)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    lines = err.strip().splitlines()
    assert proc.returncode == 128 + sig and out == "", err[-3000:]
    assert len(lines) == 1 and lines[0].startswith(f"interrupted by {signal.Signals(sig).name}: "), err[-3000:]
    assert sorted(str(p.relative_to(run)) for p in run.rglob("*")) == before  # no eval/, no .part, no tb/.hparams*
