"""An advisory lock on a run directory, so two processes never write the same run.

``RUN_DIR/run.lock`` holds the owner's pid, host, start time and command line, and the owner keeps an
``fcntl.flock`` on it while it runs. The flock is what makes a crash harmless: the kernel drops it when the
process dies, however it dies, so a later acquirer can tell a live owner (flock busy) from a stale file (flock
free). The file is written completely under a unique temporary name and then hard-linked into place, which,
like ``O_CREAT | O_EXCL``, fails when a lock is already there, but never shows a half-written lock file.

A stale lock is taken over when its owner is provably gone: the flock is free and the recorded pid is not a
live process on this host. A free flock with a live pid (the short window before an owner takes its flock,
or pid reuse) or a lock from another host is refused with the command to remove it by hand.

>>> with run_lock(run_dir):
...     train(...)   # a second `latentprior train/resume/train-prior` on run_dir fails at once, naming us
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from latentprior.errors import UserError
from latentprior.rundir.layout import RunDir

__all__ = ["LockOwner", "RunLock", "RunLockError", "acquire_run_lock", "read_lock_owner", "run_lock"]

_ATTEMPTS = 5  # races with another acquirer (a lock removed or replaced under us) are retried this often


class RunLockError(RuntimeError, UserError):
    """The run directory is being written by another process, or its lock cannot be created."""


@dataclass(frozen=True)
class LockOwner:
    """Who holds (or held) a run directory's lock."""

    pid: int
    host: str
    started: float  # time.time() when the lock was taken
    command: str

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"pid {self.pid} on host {self.host} (since {when}: {self.command})"


def _me() -> LockOwner:
    return LockOwner(os.getpid(), socket.gethostname(), time.time(), " ".join(sys.argv)[:200] or "python")


def read_lock_owner(run_dir: str | os.PathLike[str]) -> LockOwner | None:
    """The owner recorded in ``run_dir``'s lock file; None when there is none or it cannot be parsed."""
    try:
        data = json.loads(RunDir(run_dir).lock.read_text())
        return LockOwner(int(data["pid"]), str(data["host"]), float(data["started"]), str(data["command"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process on this host (a zombie, dead but not yet reaped, is not)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    try:  # Linux: a zombie still answers kill(pid, 0); its state letter, after the ')' of its name, says Z
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


class RunLock:
    """A held lock; :meth:`release` (or leaving :func:`run_lock`) removes the file and drops the flock."""

    def __init__(self, path: Path, fd: int, owner: LockOwner) -> None:
        self.path, self.owner, self._fd = path, owner, fd

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def release(self) -> None:
        if self._fd < 0:
            return
        try:
            # Unlink only a file that is still ours: after a takeover by hand the path may be someone else's.
            if os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:
                self.path.unlink()
        except FileNotFoundError:
            pass
        finally:
            os.close(self._fd)  # drops the flock; after the unlink, so no one can take a file about to vanish
            self._fd = -1


def _create(path: Path, owner: LockOwner) -> RunLock | None:
    """Publish a new lock file at ``path`` (flocked before it is visible); None when one is already there."""
    tmp = path.with_name(f".{path.name}.{owner.pid}.{uuid.uuid4().hex[:8]}")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, json.dumps(asdict(owner)).encode())
        os.fsync(fd)
        os.link(tmp, path)  # atomic and exclusive: fails with FileExistsError when a lock is there
    except FileExistsError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return RunLock(path, fd, owner)


def _stale_or_refuse(path: Path) -> bool:
    """True when the existing lock at ``path`` was removed as stale; False when it vanished meanwhile
    (retry); raises :class:`RunLockError` when its owner may be alive."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = read_lock_owner(path.parent)
            who = owner.describe() if owner else "another process (its lock file is unreadable)"
            raise RunLockError(f"run directory {path.parent} is in use by {who}; wait for it or stop it") from None
        if os.stat(path).st_ino != os.fstat(fd).st_ino:
            return False  # released and replaced between our open and our flock: look again
        owner = read_lock_owner(path.parent)
        here = socket.gethostname()
        if owner is not None and (owner.host != here or _pid_alive(owner.pid)):
            where = "may still be running" if owner.host == here else "runs on another host, so it cannot be checked"
            raise RunLockError(
                f"run directory {path.parent} is locked by {owner.describe()}, which {where}; "
                f"if no such process is writing this run, delete {path}"
            )
        path.unlink()  # stale: the flock is free and its owner (if recorded) is gone
        return True
    finally:
        os.close(fd)


# Locks this process holds, by path: a nested run_lock on the same directory (resume calling train) reuses it.
_HELD: dict[Path, tuple[RunLock, int]] = {}
_HELD_GUARD = threading.Lock()


def acquire_run_lock(run_dir: str | os.PathLike[str]) -> RunLock:
    """Take ``run_dir``'s lock (creating the directory) or raise :class:`RunLockError` naming its owner."""
    run_dir = Path(run_dir)
    path = RunDir(run_dir).lock.resolve()
    owner = _me()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(_ATTEMPTS):
            lock = _create(path, owner)
            if lock is not None:
                return lock
            _stale_or_refuse(path)
    except OSError as err:  # read-only or full file system, no permission
        raise RunLockError(f"cannot create the lock file {path}: {err.strerror or err}") from err
    raise RunLockError(f"could not take the lock {path}: other processes keep replacing it")


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike[str]) -> Iterator[RunLock]:
    """Hold ``run_dir``'s lock for the ``with`` block; re-entrant within one process."""
    key = RunDir(run_dir).lock.resolve()
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is not None:
            _HELD[key] = (held[0], held[1] + 1)
    if held is None:
        lock = acquire_run_lock(run_dir)
        with _HELD_GUARD:
            _HELD[key] = (lock, 1)
    try:
        yield _HELD[key][0]
    finally:
        with _HELD_GUARD:
            lock, depth = _HELD[key]
            if depth > 1:
                _HELD[key] = (lock, depth - 1)
            else:
                del _HELD[key]
                lock.release()
