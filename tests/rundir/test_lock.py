"""The run-directory lock: one writer at a time, a crashed writer's lock taken over, a live one refused.

The holders are real subprocesses, so what is tested is what the kernel does with a flock when its process
exits or is killed, not a mock of it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from latentprior.errors import UserError
from latentprior.rundir import RunDir
from latentprior.rundir.lock import (
    RunLockError,
    acquire_run_lock,
    read_lock_owner,
    run_lock,
)

HOLDER = textwrap.dedent("""
    import os, sys, time
    from latentprior.rundir.lock import run_lock
    with run_lock(sys.argv[1]):
        print("held", flush=True)
        if sys.argv[2] == "crash":
            os._exit(0)  # dies holding the lock: no release, the file stays behind
        time.sleep(120)
""")


def _holder(run_dir, mode: str = "hold") -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir), mode], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _write_lock(run_dir, pid: int, host: str | None = None) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    owner = {"pid": pid, "host": host or socket.gethostname(), "started": time.time(), "command": "by hand"}
    RunDir(run_dir).lock.write_text(json.dumps(owner))


def test_lock_records_owner_and_is_removed_on_release(tmp_path):
    run = tmp_path / "run"
    with run_lock(run) as lock:
        owner = read_lock_owner(run)
        assert (owner.pid, owner.host) == (os.getpid(), socket.gethostname())
        assert lock.held and owner == lock.owner
        with run_lock(run):  # re-entrant in one process: resume calling train must not lock itself out
            pass
        assert RunDir(run).lock.exists()
    assert not RunDir(run).lock.exists() and not lock.held
    assert [p.name for p in run.iterdir()] == []  # no temporary file left behind


def test_second_writer_is_refused_naming_the_live_owner(tmp_path):
    run = tmp_path / "run"
    proc = _holder(run)
    try:
        with pytest.raises(RunLockError) as err:
            acquire_run_lock(run)
        msg = str(err.value)
        assert isinstance(err.value, UserError) and "\n" not in msg
        assert f"pid {proc.pid} on host {socket.gethostname()}" in msg and str(run) in msg
        assert "in use by" in msg and "delete" not in msg  # the kernel's flock says it runs: never advise deleting
        assert read_lock_owner(run).pid == proc.pid  # the refusal left the owner's file alone
    finally:
        proc.kill()
        proc.wait()
    # Killed with SIGKILL: no cleanup ran, the file is still there, but the kernel dropped the flock.
    assert read_lock_owner(run).pid == proc.pid
    with run_lock(run):
        assert read_lock_owner(run).pid == os.getpid()


def test_lock_of_a_process_that_died_holding_it_is_taken_over(tmp_path):
    run = tmp_path / "run"
    proc = _holder(run, "crash")
    assert proc.wait(timeout=30) == 0
    assert read_lock_owner(run).pid == proc.pid  # a stale file from a dead process
    with run_lock(run) as lock:
        assert lock.owner.pid == os.getpid() and read_lock_owner(run).pid == os.getpid()


def test_zombie_owner_counts_as_dead(tmp_path):
    run = tmp_path / "run"
    proc = _holder(run)
    os.kill(proc.pid, signal.SIGKILL)
    time.sleep(0.5)  # not reaped yet: still a zombie, which kill(pid, 0) reports as existing
    try:
        with run_lock(run):
            assert read_lock_owner(run).pid == os.getpid()
    finally:
        proc.wait()


def test_unflocked_lock_of_a_live_pid_is_refused(tmp_path):
    # The window between an owner publishing its file and a crash, or pid reuse: the flock is free but the
    # recorded pid runs, so taking the lock over could give a run two writers. Refused.
    run = tmp_path / "run"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _write_lock(run, sleeper.pid)
        with pytest.raises(RunLockError, match=rf"pid {sleeper.pid} .*may still be running.*delete"):
            acquire_run_lock(run)
    finally:
        sleeper.kill()
        sleeper.wait()
    with run_lock(run):  # the same file, its pid now gone: stale
        assert read_lock_owner(run).pid == os.getpid()


def test_lock_from_another_host_is_refused(tmp_path):
    run = tmp_path / "run"
    _write_lock(run, 1, host="elsewhere.example")
    with pytest.raises(RunLockError, match="elsewhere.example.*another host.*delete"):
        acquire_run_lock(run)


def test_unreadable_stale_lock_is_taken_over(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    RunDir(run).lock.write_bytes(b"\x00garbage")
    with run_lock(run):
        assert read_lock_owner(run).pid == os.getpid()


def test_lock_in_an_uncreatable_place_is_a_one_line_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(RunLockError, match="cannot create the lock file") as err:
        acquire_run_lock(blocker / "run")
    assert str(blocker) in str(err.value) and "\n" not in str(err.value)
