"""Opt-in downloads from the official sources, written atomically and verified, and safe tar extraction.

Nothing here runs unless a loader is called with ``download=True``. A download lands in a temporary
file beside its destination and is renamed into place only after its md5 matches, so an interrupted or
corrupt transfer never leaves a file a later load could mistake for the real one.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import urllib.request
import uuid
from pathlib import Path, PurePosixPath

from latentprior.atomic import atomic_path

from .files import DataError, md5sum

__all__ = ["download_file", "extract_tar"]

log = logging.getLogger(__name__)

_TIMEOUT_S = 60


def _fetch(url: str, dest: Path) -> None:
    """Copy ``url`` (http, https or file) to ``dest``. Tests replace this to avoid the network."""
    with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response, open(dest, "wb") as f:
        shutil.copyfileobj(response, f, length=1 << 20)


def download_file(url: str, dest: Path, md5: str) -> Path:
    """Fetch ``url`` to ``dest`` atomically; the md5 is checked before the file appears at ``dest``.

    Downloads are always verified, whatever ``verify`` a loader was given: they come from the official
    source, so a mismatch means a broken transfer or a changed upstream file, never a wanted copy.
    """
    log.info("downloading %s -> %s", url, dest)
    with atomic_path(dest) as tmp:
        try:
            _fetch(url, tmp)
        except Exception as err:  # any transfer failure: the temporary file is removed by atomic_path
            raise DataError(f"download of {dest.name} from {url} failed: {err}") from err
        actual = md5sum(tmp)
        if actual != md5:
            raise DataError(
                f"downloaded {dest.name} from {url} has md5 {actual}, expected {md5}; nothing was kept"
            )
    return dest


def _check_member(member: tarfile.TarInfo, archive: Path) -> PurePosixPath:
    name = PurePosixPath(member.name)
    # Absolute names, drive-like prefixes and any '..' could write outside the destination folder;
    # links and device nodes have no business in a dataset archive.
    if name.is_absolute() or ".." in name.parts or member.name.startswith(("/", "\\")) or ":" in member.name:
        raise DataError(f"refusing to extract {archive.name}: unsafe member path {member.name!r}")
    if not (member.isfile() or member.isdir()):
        raise DataError(f"refusing to extract {archive.name}: member {member.name!r} is not a file or folder")
    return name


def extract_tar(archive: Path, dest_dir: Path) -> list[Path]:
    """Extract the regular files of a tar archive under ``dest_dir``; returns the paths written.

    Every member is checked before anything is written; files are unpacked into a temporary folder
    beside their destination and then renamed into place, so a failed extraction leaves no partial file.
    Members with absolute paths, ``..`` components, links or device nodes are rejected.
    """
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            names = [_check_member(m, archive) for m in members]
            staging = dest_dir / f".extract-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            staging.mkdir(parents=True)
            try:
                written = []
                for member, name in zip(members, names, strict=True):
                    if not member.isfile():
                        continue
                    src = tar.extractfile(member)
                    if src is None:
                        raise DataError(f"cannot read {member.name!r} from {archive.name}")
                    out = staging.joinpath(*name.parts)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with src, open(out, "wb") as f:
                        shutil.copyfileobj(src, f, length=1 << 20)
                    written.append(name)
                final = []
                for name in written:
                    target = dest_dir.joinpath(*name.parts)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(staging.joinpath(*name.parts), target)
                    final.append(target)
                return final
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise DataError(f"cannot extract {archive.name} at {archive}: {err}") from err
