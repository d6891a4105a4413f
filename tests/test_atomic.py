"""The one atomic writer: a failed write leaves the old file and no debris; a finished one replaces it."""

from __future__ import annotations

import pytest

from latentprior.atomic import atomic_path, atomic_write_bytes


def test_failed_write_keeps_old_file_and_leaves_no_temporary(tmp_path):
    dest = tmp_path / "sub" / "file.bin"
    atomic_write_bytes(dest, b"old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(dest) as tmp:
        tmp.write_bytes(b"half-writ")
        raise RuntimeError("disk full")
    assert dest.read_bytes() == b"old"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["file.bin"]


def test_finished_write_replaces_and_creates_folders(tmp_path):
    dest = tmp_path / "a" / "b" / "x.json"
    atomic_write_bytes(dest, b"1")
    atomic_write_bytes(dest, b"22")
    assert dest.read_bytes() == b"22"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["x.json"]
