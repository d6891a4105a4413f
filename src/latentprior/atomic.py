"""Atomic file writes: a reader sees the old file or the new one, never a half-written one.

Every writer of the package goes through here: checkpoints, configs, metric records, caches, image grids and
downloaded or converted dataset files.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes"]


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``dest`` for the caller to write; on success it is fsynced and renamed over
    ``dest``, on any error it is removed and ``dest`` is untouched.

    The temporary file lives in the same folder so :func:`os.replace` is an atomic rename. A fresh unique name
    rather than ``mkstemp``: the writer creates the file, so it gets the usual umask permissions, not 0600.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = dest.with_name(f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part")
    try:
        yield tmp_path
        # fsync before the rename: after a crash the new name never points at data still in the page cache.
        fd = os.open(tmp_path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp_path, dest)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
