"""CelebA (aligned and cropped) at 64×64, with its 40 binary attributes and official splits.

Layout: ``DATA_DIR/celeba/img_align_celeba/*.jpg`` (the unpacked ``img_align_celeba.zip``) plus
``list_attr_celeba.txt`` and ``list_eval_partition.txt`` in ``DATA_DIR/celeba/``, each either plain or
gzipped (``.txt.gz``); their md5s are those of the plain text. The images carry no published per-file
checksum, so ``verify`` covers the two lists only.

Preprocessing is the usual one for 64×64 CelebA: a centre crop of 140×140 from the 178×218 aligned image,
then a bilinear resize (PIL, which antialiases when shrinking) to 64×64. Decoding 200k JPEGs takes
minutes, so each decoded split is cached as ``.npy`` beside the image folder; the cache file name holds
a hash of everything that changes its content (split file list, crop, size, resampling).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from latentprior.atomic import atomic_path

from .dataset import ImageDataset
from .files import DataError, require_file

__all__ = ["CELEBA_MD5", "CELEBA_SPLITS", "load_celeba", "read_attributes", "read_partition"]

FOLDER = "celeba"
IMAGES = "img_align_celeba"
CROP = 140
MAX_SIDE = 4096  # aligned CelebA images are 178×218; a header claiming more is a damaged or foreign file
_CACHE_VERSION = 1  # bump when the decoding below changes, so old caches are not reused

CELEBA_MD5 = {  # of the plain-text files
    "list_attr_celeba.txt": "75e246fa4810816ffd6ee81facbd244c",
    "list_eval_partition.txt": "d32c9cbf5e040fd4025c592c306e6668",
}
CELEBA_SPLITS = {"train": 0, "valid": 1, "test": 2}  # codes used in list_eval_partition.txt

_SOURCE = (
    "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Google Drive: 'Align&Cropped Images' "
    "img_align_celeba.zip, 'Anno/list_attr_celeba.txt', 'Eval/list_eval_partition.txt'; CelebA is not "
    "downloaded automatically, download=True cannot fetch it)"
)


def _list_file(root: Path, name: str, verify: bool) -> Path:
    """The plain or gzipped copy of one CelebA list file, checked against the plain text's md5."""
    plain, gz = root / name, root / f"{name}.gz"
    path = plain if plain.is_file() or not gz.is_file() else gz
    return require_file(
        path,
        CELEBA_MD5[name],
        verify=verify,
        source=f"{_SOURCE} (plain or .gz)",
        downloadable=False,
        gunzip=path.suffix == ".gz",
    )


def _read_bytes(path: Path) -> bytes:
    try:
        return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path.name} at {path} is unreadable or corrupt: {err}") from err


# Byte classes for the attribute body once '-1' has become '0': one digit per value, blanks between.
_BLANK, _DIGIT, _OTHER = 0, 1, 2
_BYTE_KIND = np.full(256, _OTHER, dtype=np.int8)
_BYTE_KIND[list(b"01")] = _DIGIT
_BYTE_KIND[list(b" \t\r\n")] = _BLANK


def read_attributes(path: Path) -> tuple[list[str], tuple[str, ...], np.ndarray]:
    """Parse ``list_attr_celeba.txt[.gz]``: file names, attribute names, attributes (N, A) int8 in {0, 1}."""
    raw = _read_bytes(path)
    try:
        first, second, body = raw.split(b"\n", 2)
        n, names = int(first), tuple(second.decode("ascii").split())
    except (ValueError, UnicodeDecodeError) as err:
        raise DataError(f"{path.name} at {path} has no count/attribute-name header") from err
    a = len(names)
    rows = [line.split(None, 1) for line in body.splitlines() if line.strip()]
    # Every value token is '1' or '-1', so a well-formed row holds exactly A ones.
    if len(rows) != n or any(len(r) != 2 or r[1].count(b"1") != a for r in rows):
        raise DataError(f"{path.name} at {path}: header says {n} rows of {a} attributes, the body disagrees")
    # Vectorised rather than per-token int(): 8M tokens take seconds in Python and this runs on every load.
    values = b" ".join(r[1] for r in rows)
    if b"0" in values:
        raise DataError(f"{path.name} at {path} has attribute values other than -1/1")
    codes = np.frombuffer(values.replace(b"-1", b"0"), dtype=np.uint8)
    kind = _BYTE_KIND[codes]
    digit = kind == _DIGIT
    # Two digits in a row were two values glued together ('1-1', '11'): one token each, or the file is corrupt.
    if (kind == _OTHER).any() or (digit[1:] & digit[:-1]).any():
        raise DataError(f"{path.name} at {path} has attribute values other than -1/1")
    attrs = (codes[digit] == ord("1")).astype(np.int8).reshape(n, a)  # -1/1 -> 0/1
    try:
        files = [r[0].decode("ascii") for r in rows]
    except UnicodeDecodeError as err:
        raise DataError(f"{path.name} at {path} has a non-ASCII file name") from err
    return files, names, attrs


def read_partition(path: Path) -> dict[str, int]:
    """Parse ``list_eval_partition.txt[.gz]``: file name -> 0 (train), 1 (valid) or 2 (test)."""
    out: dict[str, int] = {}
    try:
        lines = _read_bytes(path).decode("ascii").splitlines()
    except UnicodeDecodeError as err:
        raise DataError(f"{path.name} at {path} is not an ASCII text file") from err
    for i, line in enumerate(lines):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise DataError(f"{path.name} at {path}, line {i + 1}: expected '<file>.jpg 0|1|2', got {line!r}")
        out[parts[0]] = int(parts[1])
    return out


def _decode(path: Path, size: int) -> np.ndarray:
    """One aligned CelebA JPEG -> (3, size, size) uint8: centre crop 140×140, bilinear resize.

    The frame size is checked from the header before any pixel is decoded, so a file claiming a huge
    frame costs nothing.
    """
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w > MAX_SIDE or h > MAX_SIDE:
                raise DataError(f"{path.name} at {path} claims {w}×{h} pixels, more than {MAX_SIDE} on a side")
            if w < CROP or h < CROP:
                raise DataError(f"{path.name} at {path} is {w}×{h}, smaller than the {CROP}×{CROP} crop")
            # Same rounding as torchvision's CenterCrop: for 178×218 the box starts at (19, 39).
            left, top = round((w - CROP) / 2), round((h - CROP) / 2)
            im = im.convert("RGB").crop((left, top, left + CROP, top + CROP))
            im = im.resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)  # (H, W, C) -> (C, H, W)
    except Image.DecompressionBombError as err:  # raised by Image.open itself, before our size check
        raise DataError(f"{path.name} at {path} claims too many pixels: {err}") from err
    # PIL raises OSError subclasses for truncated or non-image files, and ValueError/SyntaxError/struct.error
    # from some damaged headers.
    except (OSError, ValueError, SyntaxError, struct.error) as err:
        raise DataError(f"cannot decode {path.name} at {path}: {err}") from err


def _cache_path(root: Path, split: str, size: int, files: list[str]) -> Path:
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(f"v{_CACHE_VERSION}|crop{CROP}|{size}px|bilinear|".encode())
    digest.update("\n".join(files).encode())
    return root / f"{IMAGES}.{split}.{size}px.{digest.hexdigest()[:12]}.npy"


def _load_cache(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        warnings.warn(f"ignoring unreadable CelebA cache {path}: {err}", stacklevel=3)
        return None
    if arr.dtype != np.uint8 or arr.shape != shape:
        got = f"{arr.dtype} {arr.shape}"
        warnings.warn(f"ignoring CelebA cache {path}: {got}, expected uint8 {shape}", stacklevel=3)
        return None
    return arr


def _decode_all(folder: Path, files: list[str], size: int, split: str, workers: int) -> np.ndarray:
    present = set(os.listdir(folder)) if folder.is_dir() else set()
    missing = [f for f in files if f not in present]
    if missing:
        raise DataError(
            f"{len(missing)} of {len(files)} CelebA {split} images missing from {folder} "
            f"(first: {', '.join(missing[:3])}). Obtain img_align_celeba.zip from {_SOURCE} "
            "and unpack it there"
        )
    out = np.empty((len(files), 3, size, size), dtype=np.uint8)
    # PIL releases the GIL while decoding and resizing, so threads give a real speed-up here.
    with (
        ThreadPoolExecutor(max_workers=workers) as pool,
        tqdm(total=len(files), desc=f"decoding CelebA {split}", unit="img", disable=None) as bar,
    ):
        for i, img in enumerate(pool.map(lambda f: _decode(folder / f, size), files)):
            out[i] = img
            bar.update()
    return out


def load_celeba(
    split: str,
    data_dir: Path,
    *,
    verify: bool,
    download: bool = False,
    size: int = 64,
    workers: int | None = None,
) -> ImageDataset:
    """CelebA ``train`` / ``valid`` / ``test``: images (N, 3, size, size) uint8, attributes (N, 40) int8.

    ``download`` is accepted for a uniform signature but fetches nothing: CelebA lives on Google Drive and
    must be fetched by hand; the missing-file errors say where. ``size`` other than 64 gets its own cache.
    """
    del download
    root = data_dir / FOLDER
    attr_files, attr_names, attrs = read_attributes(_list_file(root, "list_attr_celeba.txt", verify))
    partition = read_partition(_list_file(root, "list_eval_partition.txt", verify))
    code = CELEBA_SPLITS[split]
    files = [f for f, c in partition.items() if c == code]
    row = {f: i for i, f in enumerate(attr_files)}
    unknown = [f for f in files if f not in row]
    if unknown:
        raise DataError(
            f"{len(unknown)} {split} images of the partition list have no attributes (e.g. {unknown[0]})"
        )
    attributes = attrs[[row[f] for f in files]]

    shape = (len(files), 3, size, size)
    cache = _cache_path(root, split, size, files)
    images = _load_cache(cache, shape)
    if images is None:
        images = _decode_all(root / IMAGES, files, size, split, workers or min(8, os.cpu_count() or 1))
        try:
            with atomic_path(cache) as tmp, open(tmp, "wb") as f:
                np.save(f, images)
        except OSError as err:  # a read-only data dir still loads, only slower next time
            warnings.warn(f"could not write CelebA cache {cache}: {err}", stacklevel=2)
    return ImageDataset(
        images=torch.from_numpy(images),
        attributes=torch.from_numpy(np.ascontiguousarray(attributes)),
        attribute_names=attr_names,
        name="celeba",
        split=split,
    )
