"""Locating and checksumming dataset files (writes go through :func:`latentprior.atomic.atomic_path`).

Every loader goes through :func:`require_file` before it opens a file, so a missing or altered file
fails the same way for every dataset: a :class:`DataError` that names the file, where it was expected,
its official md5 and where to obtain it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

from latentprior.errors import UserError

__all__ = [
    "DATA_DIR_ENV",
    "DataError",
    "md5sum",
    "require_file",
    "resolve_data_dir",
]

DATA_DIR_ENV = "LATENTPRIOR_DATA_DIR"

# (resolved path, size, mtime_ns, gunzip) -> md5 hex digest. Keyed on size and mtime so a file replaced
# in place (a fresh download, a user's copy) is hashed again, while repeated loads of the same file in
# one process (sweeps, tests) hash it once.
_MD5_CACHE: dict[tuple[str, int, int, bool], str] = {}

_CHUNK = 1 << 20


class DataError(RuntimeError, UserError):
    """A dataset file is missing, corrupt, or does not match its official checksum."""


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    """The data directory: ``data_dir`` if given, else ``$LATENTPRIOR_DATA_DIR``, else :class:`DataError`."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    raise DataError(
        "no data directory given: pass data_dir=... (CLI: --data-dir DIR) or set the "
        f"{DATA_DIR_ENV} environment variable to the folder holding mnist/, fashion-mnist/, cifar10/, celeba/"
    )


def _hash_file(path: Path, gunzip: bool) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    opener = gzip.open if gunzip else open
    try:
        with opener(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError; a cut-off stream is an EOFError
        raise DataError(f"cannot read {path.name} at {path}: {err}") from err
    return digest.hexdigest()


def md5sum(path: str | os.PathLike[str], *, gunzip: bool = False) -> str:
    """md5 hex digest of a file (of its decompressed content if ``gunzip``), cached per path, size, mtime."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, gunzip)
    if key not in _MD5_CACHE:
        _MD5_CACHE[key] = _hash_file(path, gunzip)
    return _MD5_CACHE[key]


def _hints(downloadable: bool) -> str:
    fetch = "pass download=True (CLI: --download) to fetch it, or " if downloadable else ""
    return (
        f"{fetch}pass verify=False (CLI: --no-verify) to accept a copy that does not match the official "
        "checksum (structure is still checked)"
    )


def require_file(
    path: Path,
    md5: str,
    *,
    verify: bool,
    source: str,
    downloadable: bool = True,
    gunzip: bool = False,
) -> Path:
    """Check that ``path`` exists and, when ``verify``, that its md5 is ``md5``; return it.

    ``source`` says where the official file comes from (a URL, or an archive and what to do with it);
    ``gunzip`` hashes the decompressed content (CelebA's lists are published uncompressed).
    """
    what = f"{path.name} (decompressed)" if gunzip else path.name
    if not path.is_file():
        raise DataError(
            f"missing {path.name}: expected at {path} (official md5 {md5}). Obtain it from {source}; "
            + _hints(downloadable)
        )
    if verify:
        actual = md5sum(path, gunzip=gunzip)
        if actual != md5:
            raise DataError(
                f"checksum mismatch for {what} at {path}: expected md5 {md5}, got {actual}. The file is "
                f"corrupt or not the official release ({source}); delete it and "
                + ("re-run with download=True (CLI: --download), " if downloadable else "fetch it again, ")
                + "or pass verify=False (CLI: --no-verify) to use it anyway"
            )
    return path
