"""Atomic file writes: a reader sees the old file or the new one, never a half-written one.

Every file the package writes whole goes through here: checkpoints and their index, configs, sweep state,
feature caches, image grids, reports, downloaded or converted dataset files, and the metric log when a resume
truncates it. Logs that grow line by line are appended to instead (``metrics.jsonl``, TensorBoard events, a
trial's log): a crash can cut only their last line, never what was written before it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from latentprior.errors import UserError

__all__ = ["WriteError", "atomic_path", "atomic_write_bytes", "writing"]


class WriteError(OSError, UserError):
    """A file could not be written (disk full, read-only folder, no permission); the message names the path."""

    def __init__(self, path: str | os.PathLike[str], reason: str,
                 then: str = "then run the command again (files written before are unchanged)") -> None:
        self.path, self.reason, self.then = os.fspath(path), reason, then
        super().__init__(f"cannot write {self.path}: {reason}; free space or make the folder writable, {then}")

    def __str__(self) -> str:
        return self.args[0]

    def __reduce__(self):  # rebuilt from its parts (a sweep's Ray worker sends its errors to the driver)
        return type(self), (self.path, self.reason, self.then)

    def advising(self, then: str) -> WriteError:
        """The same error with another last clause (what to run once the disk has room)."""
        return WriteError(self.path, self.reason, then)


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


@contextlib.contextmanager
def writing(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn an OSError raised while writing ``path`` into a one-line :class:`WriteError` that names it.

    Used around every write of a run (atomic files, appended logs, folders): a full disk or a read-only run
    directory is the user's to fix, and the message must say where, not show a traceback.
    """
    try:
        yield
    except WriteError:
        raise
    except OSError as e:
        raise WriteError(path, _reason(e)) from e


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``dest`` for the caller to write; on success it is fsynced and renamed over
    ``dest``, on any error it is removed and ``dest`` is untouched.

    The temporary file lives in the same folder so :func:`os.replace` is an atomic rename. A fresh unique name
    rather than ``mkstemp``: the writer creates the file, so it gets the usual umask permissions, not 0600.
    """
    dest = Path(dest)
    tmp_path = dest.with_name(f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part")
    try:
        with writing(dest):
            dest.parent.mkdir(parents=True, exist_ok=True)
            yield tmp_path
            # fsync before the rename: after a crash the new name never points at data still in the page cache.
            fd = os.open(tmp_path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp_path, dest)
    finally:
        with contextlib.suppress(OSError):  # a read-only folder cannot even hold the temporary name
            tmp_path.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
