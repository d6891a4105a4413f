"""Hostile files through the command line: the cases tests/test_fuzz*.py feed the readers directly, here
reaching them the way a user does (``latentprior train`` on a data dir, ``resume`` on a run dir).

Each must end with exit status 2, one ``error:`` line naming the file, no code run from a pickle, and a peak
resident memory of the command well below what the file claims.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickle
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from benchmarks.fault_tools import cli_measured, one_line_error

__all__ = ["hostile_files"]

_MAX_RSS_MB = 1024  # a refused file costs ~250 MB (torch); every claim below is 2 GiB or more


class _Touch:
    """Unpickling this runs ``touch MARKER``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _Alloc:
    """Unpickling this asks numpy for an uninitialised array of ``shape`` (bytes the file never pays for)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def __reduce__(self):
        return np.ndarray, (self.shape, "u1")


def _idx(path: Path, dims: tuple[int, ...], payload: bytes = b"") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    path.write_bytes(gzip.compress(header + payload))


def _mnist_dir(root: Path, images_dims: tuple[int, ...], payload: bytes = b"") -> Path:
    _idx(root / "mnist" / "train-images-idx3-ubyte.gz", images_dims, payload)
    _idx(root / "mnist" / "train-labels-idx1-ubyte.gz", (2,), b"\x01\x02")
    return root / "mnist" / "train-images-idx3-ubyte.gz"


def _mnist_bomb(root: Path, size: int) -> Path:
    """An images file whose header claims 2 images and whose stream inflates to ``size`` bytes."""
    path = _mnist_dir(root, (2, 28, 28))
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (2, 28, 28)))
        zeros = bytes(16 << 20)
        for _ in range(size // len(zeros)):
            f.write(zeros)
    return path


def _cifar_dir(root: Path, batch_1: object) -> Path:
    folder = root / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    ok = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}
    for name in [f"data_batch_{i}" for i in range(2, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps(ok, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"c"] * 10}, protocol=2))
    (folder / "data_batch_1").write_bytes(pickle.dumps(batch_1, protocol=2))
    return folder / "data_batch_1"


def _checkpoint(run: Path, payload: bytes | None = None, index: object = None) -> Path:
    """Replace the run's checkpoint with ``payload`` (latest.json vouching for it) or latest.json with ``index``."""
    path = run / "checkpoints" / "latest.json"
    meta = json.loads(path.read_text())
    if payload is not None:
        (run / "checkpoints" / meta["file"]).write_bytes(payload)
        meta.update(sha256=hashlib.sha256(payload).hexdigest(), bytes=len(payload))
        index = meta
    path.write_text(json.dumps(index))
    return run / "checkpoints" / meta["file"] if payload is not None else path


def hostile_files(work: Path, i: int, rng: random.Random, ref,
                  only: tuple[str, ...] | None = None) -> list[tuple[bool, int, int, str]]:
    """Every case (or those whose name starts with one of ``only``); one outcome per case."""
    work.mkdir(parents=True, exist_ok=True)
    marker = work / "pwned"
    cfg = str(ref.config("vae"))

    def train_on(dataset: str, data_dir: Path) -> list[str]:
        return ["train", cfg, "--out", str(work / f"out-{data_dir.name}"), "--set", "data.verify=false",
                "--set", f"data.name={dataset}", "--data-dir", str(data_dir)]

    n = rng.choice([10**4, 2**31 - 1, 2**32 - 1])
    src, _, _ = ref.run("vae")
    buf = io.BytesIO()
    torch.save({"format": "latentprior-checkpoint/1", "model": _Touch(marker)}, buf)
    bad_yaml = work / "bad.yaml"
    bad_yaml.write_bytes(b"train: {epochs: [\xff\xfe")
    # name -> (command line, a function that writes the hostile file and returns it: the error must name it)
    cases = {
        "idx header claiming 10^12+ bytes": (train_on("mnist", work / "d1"),
                                             lambda: _mnist_dir(work / "d1", (n, n, 28))),
        "idx gzip bomb (2 GiB of zeros)": (train_on("mnist", work / "d2"), lambda: _mnist_bomb(work / "d2", 2 << 30)),
        "CIFAR pickle running code": (train_on("cifar10", work / "d3"),
                                      lambda: _cifar_dir(work / "d3", {b"data": _Touch(marker), b"labels": []})),
        "CIFAR pickle claiming 30 GB": (train_on("cifar10", work / "d4"), lambda: _cifar_dir(
            work / "d4", {b"data": _Alloc((10**7, 3072)), b"labels": []})),
        "config not UTF-8, unclosed": (["train", str(bad_yaml), "--out", str(work / "o2")], lambda: bad_yaml),
        "checkpoint pickle running code": (["resume", str(work / "r1")],
                                           lambda: _checkpoint(_copy(src, work / "r1"), payload=buf.getvalue())),
        "checkpoint index not a mapping": (["resume", str(work / "r2")],
                                           lambda: _checkpoint(_copy(src, work / "r2"), index=[1, 2])),
    }
    out = []
    for name, (args, make) in cases.items():
        if only is not None and not name.startswith(only):
            continue
        path = make()
        res = cli_measured(args, timeout=300)  # generous: a loaded CI machine starts torch slowly
        ran_code = marker.exists()
        ok = one_line_error(res, path.name) and not ran_code and res.max_rss_mb < _MAX_RSS_MB
        tail = res.stderr.strip()[-150:]
        why = "" if ok else f": rc {res.rc}, {res.max_rss_mb:.0f} MB, ran code: {ran_code}, {tail!r}"
        out.append((ok, 0, 0, name + why))
        marker.unlink(missing_ok=True)
    return out


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest
