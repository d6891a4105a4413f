"""Pieces of the fault harness (`python -m benchmarks.faults`): the ``latentprior`` command as a subprocess, tiny run
configs, what a run directory says about itself (losses, last complete checkpoint), and small file systems.

Everything goes through the command line and the files a run writes, never through the package's internals,
so the harness checks what a user sees: exit status 2 with one ``error:`` line, or a run that continues.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CHECKPOINT_EVERY", "CHILD", "COMMAND", "Result", "checkpoint_state", "cli", "cli_popen", "fill", "finish",
           "fsize_limit", "losses", "one_line_error", "read_only", "small_fs", "tiny_config", "wait_for"]

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT_EVERY = 4
CHILD = [sys.executable, str(Path(__file__).resolve().with_name("fault_child.py"))]  # a training child process
_EXE = Path(sys.executable).with_name("latentprior")
COMMAND = [str(_EXE)] if _EXE.exists() else [sys.executable, "-m", "latentprior.cli"]
# RAY_worker_niceness: Ray starts its workers at nice 15, where any busy ordinary process on the machine starves
# them (measured: a 2-trial sweep under three busy processes on 2 cores did not finish one 30-step run in 600 s);
# the harness times recovery from faults, not the scheduler, so its sweeps' workers run at normal priority.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
       "RAY_worker_niceness": "0"}

# Two joint epochs and one prior-only epoch of digits (15 steps each), checkpoints every 4 steps, one log line per
# step: a whole run is a few seconds, and every step's losses are in metrics.jsonl to compare.
_TRAIN = ("train: {epochs: 2, prior_epochs: 1, batch_size: 100, log_every: 1, "
          f"checkpoint_every: {CHECKPOINT_EVERY}, threads: 1, progress: false, device: cpu}}")
_MODELS = {
    "vae": ["prior: {kind: realnvp, layers: 2, hidden: 16}", "model: {latent_dim: 4}",
            "objective: {kind: vae, beta: 0.0, lr: 1.0e-3}"],
    "aae": ["prior: {kind: adversarial, layers: 1, hidden: 16, disc_layers: 1, disc_hidden: 16}",
            "model: {latent_dim: 4, encoder: deterministic}",
            "objective: {kind: aae, beta: 0.0, lr: 1.0e-3, prior_lr: 2.0e-4, disc_lr: 2.0e-4, adam_beta1: 0.5}"],
}


def tiny_config(folder: Path, model: str) -> Path:
    """A run config for ``model`` (vae or aae) on the embedded digits dataset, written into ``folder``."""
    path = folder / f"tiny_{model}.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(["data: {name: digits}", "net: {width: 0.0625}", *_MODELS[model], _TRAIN]) + "\n")
    return path


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    max_rss_mb: float
    seconds: float


def finish(proc: subprocess.Popen, timeout: float = 300) -> Result:
    """Wait for ``proc``; its peak RSS comes from wait4, so it is this child's alone."""
    start = time.monotonic()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        err += f"\n[harness: killed after {timeout} s]"
    rss = getattr(proc, "_max_rss_kb", 0.0)
    return Result(proc.returncode, out, err, rss / 1024, time.monotonic() - start)


class _RusagePopen(subprocess.Popen):
    """Popen that reaps its child with wait4, keeping the child's peak RSS."""

    def _try_wait(self, wait_flags):  # noqa: ANN001 - CPython's private hook
        try:
            pid, status, usage = os.wait4(self.pid, wait_flags)
        except ChildProcessError:
            return self.pid, 0
        if pid:
            self._max_rss_kb = usage.ru_maxrss
        return pid, status


def cli_popen(args: list[str], preexec: Callable[[], None] | None = None, env: dict[str, str] | None = None,
              command: list[str] | None = None) -> subprocess.Popen:
    """Start ``latentprior ARGS`` (or ``command ARGS``) with one torch thread; stdout and stderr piped."""
    return _RusagePopen([*(command or COMMAND), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                        env={**ENV, **(env or {})}, preexec_fn=preexec)


def cli(args: list[str], timeout: float = 300, **kw) -> Result:
    """Run ``latentprior ARGS`` to the end (keywords as :func:`cli_popen`)."""
    return finish(cli_popen(args, **kw), timeout)


# A child's ru_maxrss counts the pages it shared with its parent between fork and exec, so a command forked from a
# large process (a test runner that has loaded many models) reads at least the parent's size. A small fresh
# process in between forks the command from a small address space and reports the command's own peak.
_MEASURE = ("import os, subprocess, sys\n"
            "p = subprocess.Popen(sys.argv[2:])\n"
            "_, status, usage = os.wait4(p.pid, 0)\n"
            "open(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n"
            "sys.exit(os.waitstatus_to_exitcode(status) % 256)\n")


def cli_measured(args: list[str], timeout: float = 300) -> Result:
    """:func:`cli` with the peak RSS of the command alone (see ``_MEASURE``); for commands nobody signals."""
    with tempfile.TemporaryDirectory() as tmp:
        rss_file = Path(tmp) / "rss"
        res = finish(cli_popen(args, command=[sys.executable, "-c", _MEASURE, str(rss_file), *COMMAND]), timeout)
        rss_kb = float(rss_file.read_text()) if rss_file.is_file() else res.max_rss_mb * 1024
    return Result(res.rc, res.stdout, res.stderr, rss_kb / 1024, res.seconds)


def one_line_error(res: Result, *names: str) -> bool:
    """Exit status 2 and stderr one ``error:`` line that mentions every one of ``names``."""
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    return res.rc == 2 and len(lines) == 1 and lines[0].startswith("error:") and all(n in lines[0] for n in names)


def losses(run: Path) -> dict[int, dict[str, float]]:
    """Step -> every ``*/loss`` value logged at that step (the last record wins, as after a resume)."""
    out: dict[int, dict[str, float]] = {}
    path = run / "metrics.jsonl"
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            rec = json.loads(line)
            out[int(rec["step"])] = {k: v for k, v in rec.items() if k.endswith("/loss")}
    return out


def checkpoint_state(run: Path) -> tuple[int | None, bool, int]:
    """(step of the checkpoint latest.json names, whether its SHA-256 matches, its size); (None, True, 0) when
    the run has no checkpoint yet."""
    index = run / "checkpoints" / "latest.json"
    if not index.exists():
        return None, True, 0
    try:
        meta = json.loads(index.read_text())
        data = (run / "checkpoints" / meta["file"]).read_bytes()
    except (OSError, ValueError, KeyError, TypeError):
        return None, False, 0
    return int(meta["step"]), hashlib.sha256(data).hexdigest() == meta["sha256"], len(data)


def wait_for(cond: Callable[[], bool], timeout: float = 120, poll: float = 0.01) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(poll)
    return False


def _sh(*args: str) -> bool:
    return subprocess.run(list(args), capture_output=True).returncode == 0


@contextlib.contextmanager
def small_fs(where: Path, size_mb: int) -> Iterator[tuple[Path, str]]:
    """A ``size_mb`` file system mounted at ``where``: a tmpfs when this process may mount one (root), else
    ``where`` as a plain folder and method ``rlimit`` (callers then cap file sizes with :func:`fsize_limit`)."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0 and _sh("mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(where)):
        try:
            yield where, "tmpfs"
        finally:
            _sh("mount", "-o", "remount,rw", str(where))
            _sh("umount", "-l", str(where))
    else:
        yield where, "rlimit"


def fill(where: Path, leave_bytes: int) -> None:
    """Fill the file system at ``where`` until about ``leave_bytes`` are free."""
    st = os.statvfs(where)
    free = st.f_bavail * st.f_frsize
    with open(where / "filler", "wb") as f:
        f.truncate(0)
        chunk = bytes(1 << 20)
        left = max(free - leave_bytes, 0)
        while left > 0:
            f.write(chunk[: min(left, len(chunk))])
            left -= min(left, len(chunk))


def read_only(where: Path, on: bool) -> bool:
    """Remount the tmpfs at ``where`` read-only (``on``) or back read-write; False when that is impossible."""
    return _sh("mount", "-o", "remount," + ("ro" if on else "rw"), str(where))


def fsize_limit(limit: int) -> Callable[[], None]:
    """A preexec hook: files the child writes may not grow past ``limit`` bytes (EFBIG instead of SIGXFSZ)."""

    def hook() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return hook
