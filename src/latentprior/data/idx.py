"""MNIST and Fashion-MNIST from the official gzipped idx files.

Layout: ``DATA_DIR/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`` and the same names under
``DATA_DIR/fashion-mnist/``. An idx file is a big-endian header (magic ``0x0000 08 NDIM``, then NDIM
uint32 sizes) followed by the uint8 payload; the header is checked against the byte count so a cut-off
or padded file fails instead of being reshaped into garbage.
"""

from __future__ import annotations

import gzip
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .dataset import ImageDataset
from .download import download_file
from .files import DataError, require_file

__all__ = ["IDX_SOURCES", "MAX_IDX_BYTES", "IdxSource", "load_idx_dataset", "read_idx"]

_UBYTE = 0x08  # idx type code for unsigned bytes, the only one MNIST-style files use
# The largest payload a header may claim: 20x the MNIST training images, so no real file comes close, while a
# forged header (four uint32 sizes can claim 2^128 bytes) is refused before anything is allocated.
MAX_IDX_BYTES = 1 << 30
_CHUNK = 1 << 20


@dataclass(frozen=True)
class IdxSource:
    """Where a dataset's four idx files live under the data dir, their md5s and their download mirror."""

    folder: str
    mirror: str  # base URL; the file name is appended
    md5: dict[str, str]  # file name -> official md5 of the .gz file


IDX_SOURCES: dict[str, IdxSource] = {
    # torchvision's mirror: yann.lecun.com often refuses automated downloads.
    "mnist": IdxSource(
        folder="mnist",
        mirror="https://ossci-datasets.s3.amazonaws.com/mnist/",
        md5={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    ),
    "fashion_mnist": IdxSource(
        folder="fashion-mnist",
        mirror="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        md5={
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ),
}

_NUM_CLASSES = 10


def _read_exactly(f: gzip.GzipFile, n: int) -> bytes:
    """Up to ``n`` decompressed bytes, read in chunks so a short stream never costs an ``n``-byte buffer."""
    parts, left = [], n
    while left > 0:
        chunk = f.read(min(left, _CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Decode a gzipped uint8 idx file with ``ndim`` dimensions; header and length are validated.

    The header is checked before the payload is read, and at most the payload it claims (capped at
    ``MAX_IDX_BYTES``) plus one byte is ever decompressed: a forged header or a gzip bomb costs no memory.
    """
    expected_magic = _UBYTE << 8 | ndim
    header = 4 + 4 * ndim
    try:
        with gzip.open(path, "rb") as f:
            head = _read_exactly(f, header)
            magic = int.from_bytes(head[:4], "big") if len(head) >= 4 else None
            if magic != expected_magic:
                got = "none (file shorter than 4 bytes)" if magic is None else f"0x{magic:08x}"
                raise DataError(
                    f"{path.name} at {path} has idx magic {got}, expected 0x{expected_magic:08x} (uint8, {ndim} dims)"
                )
            if len(head) < header:
                raise DataError(f"{path.name} at {path} is truncated: {len(head)} bytes, shorter than its header")
            dims = tuple(int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
            size = math.prod(dims)  # a Python int: four uint32 sizes overflow int64
            if size > MAX_IDX_BYTES:
                raise DataError(
                    f"{path.name} at {path}: header {dims} claims {size} bytes, more than the "
                    f"{MAX_IDX_BYTES} an idx dataset file may hold; the file is corrupt"
                )
            payload = _read_exactly(f, size + 1)  # one byte more than claimed shows a padded file
    except (OSError, EOFError, zlib.error) as err:  # bad gzip magic, bad CRC, cut-off stream
        raise DataError(f"{path.name} at {path} is not a readable gzip file: {err}") from err
    if len(payload) != size:
        got = f"more than {size}" if len(payload) > size else str(len(payload))
        raise DataError(
            f"{path.name} at {path} has {got} payload bytes but its header {dims} implies {size}: "
            "the file is truncated or corrupt"
        )
    return np.frombuffer(payload, dtype=np.uint8).reshape(dims)


def load_idx_dataset(name: str, split: str, data_dir: Path, *, verify: bool, download: bool) -> ImageDataset:
    """``mnist`` or ``fashion_mnist``, ``train`` (60,000) or ``test`` (10,000): images (N, 1, 28, 28)."""
    source = IDX_SOURCES[name]
    root = data_dir / source.folder
    prefix = "train" if split == "train" else "t10k"
    paths = []
    for kind in ("images-idx3", "labels-idx1"):
        fname = f"{prefix}-{kind}-ubyte.gz"
        path, md5, url = root / fname, source.md5[fname], source.mirror + fname
        if download and not path.is_file():
            download_file(url, path, md5)
        paths.append(require_file(path, md5, verify=verify, source=url))
    images = read_idx(paths[0], ndim=3)
    labels = read_idx(paths[1], ndim=1)
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{paths[0].name} holds {images.shape[0]} images but {paths[1].name} {labels.shape[0]} labels"
        )
    if labels.size and labels.max() >= _NUM_CLASSES:
        raise DataError(f"{paths[1].name} at {paths[1]} has label {labels.max()}, expected 0..9")
    return ImageDataset(
        images=torch.from_numpy(images.copy()).unsqueeze(1),  # (N, 1, H, W); copy: frombuffer is read-only
        labels=torch.from_numpy(labels.astype(np.int64)),
        name=name,
        split=split,
    )
