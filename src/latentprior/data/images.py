"""A folder of your own images as an :class:`ImageDataset`: PNG/JPEG files of any size and mode, centre-cropped and
resized to one resolution, grayscale or RGB, split into train and test by content, decoded once and cached.

    load_image_folder(path, "train", resolution=32, channels=3, test_fraction=0.1)  # -> ImageDataset (N, C, R, R)

* **Files**: every ``*.png``, ``*.jpg``, ``*.jpeg`` (any case) under ``path``, recursively, in the sorted order of
  their path relative to ``path``; names starting with ``.`` (files and folders) are skipped.
* **Decoding**: EXIF orientation applied, converted to ``L`` (ITU-R 601 luma) or ``RGB`` (an alpha channel is
  dropped, a palette expanded), the largest centred square cropped (its corner at ((w - s) // 2, (h - s) // 2)) and
  resized to ``resolution`` (PIL's bicubic filter, which antialiases when it shrinks), stored as uint8.
* **Unreadable files** (truncated, not an image, a decompression bomb) are skipped: one warning gives their count
  and the first of them, and the split record lists each with its error. A folder scraped from the web often holds
  a few broken files, and refusing hundreds of thousands of images for one of them would make the folder unusable;
  the record keeps the skip visible and reproducible. A folder with fewer than 2 readable images is refused.
* **Split**: the readable images sorted by (SHA-1 of the file's bytes, path); the first ``max(1, round(N f))``
  (at most N - 1) are the test split. It depends on the files' contents alone, so it is the same on every load and
  machine, a renamed file keeps its split, identical files land in the same split (no test image has a copy in
  train), and adding a file moves at most one other.
* **Cache** (``$LATENTPRIOR_CACHE_DIR/images``, else ``~/.cache/latentprior/images``): ``<key>.npz`` holds the
  decoded images of both splits and ``<key>.json`` the split record (folder, content hash, settings, the files of
  each split, the unreadable files). The key hashes the folder's content hash (every file's path and SHA-1) and the
  settings, so an edited folder is decoded again and an unchanged one is only read and hashed. The dataset's name,
  ``images:<first 12 hex digits of the content hash>``, enters the FID reference cache key with the images' bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from latentprior.atomic import atomic_write_bytes

from .dataset import ImageDataset
from .files import DataError

__all__ = ["IMAGE_SUFFIXES", "CACHE_DIR_ENV", "ImageFolder", "load_image_folder", "scan_image_folder",
           "image_cache_dir"]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CACHE_DIR_ENV = "LATENTPRIOR_CACHE_DIR"  # the same variable as the feature cache's (evaluation/cache.py)
_FORMAT = "latentprior-image-folder/1"  # bump when decoding changes: the cache key holds it
_WARNED: set[str] = set()  # folder contents whose unreadable files this process has reported


def image_cache_dir() -> Path:
    env = os.environ.get(CACHE_DIR_ENV)
    return (Path(env).expanduser() if env else Path.home() / ".cache" / "latentprior") / "images"


class ImageFolder:
    """The files of a folder and their SHA-1s (read, not decoded): ``files`` (relative POSIX paths, sorted),
    ``sha1`` (one per file) and ``content`` (SHA-1 over every path and file hash)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DataError(f"data.path {self.root} is not a folder; expected a folder of PNG/JPEG images")
        self.files = sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*")
                            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                            and not any(part.startswith(".") for part in p.relative_to(self.root).parts))
        if not self.files:
            raise DataError(f"no PNG/JPEG images under {self.root} (looked for {', '.join(IMAGE_SUFFIXES)}, "
                            "recursively)")
        self.sha1 = [_sha1_file(self.root / f) for f in self.files]
        whole = hashlib.sha1(usedforsecurity=False)
        for f, h in zip(self.files, self.sha1, strict=True):
            whole.update(f"{f}\0{h}\n".encode())
        self.content = whole.hexdigest()


def _sha1_file(path: Path) -> str:
    try:
        return hashlib.sha1(path.read_bytes(), usedforsecurity=False).hexdigest()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from e


def _decode(path: Path, resolution: int, channels: int) -> np.ndarray:
    """One file -> (C, R, R) uint8; PIL's errors pass through (the caller records them)."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im.load()  # decode every pixel now: a truncated file fails here, not later
        im = ImageOps.exif_transpose(im).convert("L" if channels == 1 else "RGB")
        w, h = im.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        # crop, then resize: a resize of a box would read pixels outside it for its filter's support
        im = im.crop((left, top, left + side, top + side)).resize((resolution, resolution), Image.Resampling.BICUBIC)
        a = np.asarray(im, dtype=np.uint8)
    return a[None] if channels == 1 else a.transpose(2, 0, 1)  # (H, W[, C]) -> (C, H, W)


def _try_decode(path: Path, resolution: int, channels: int) -> np.ndarray | str:
    from PIL import Image

    try:
        return _decode(path, resolution, channels)
    # PIL raises OSError subclasses for truncated or non-image files, ValueError/SyntaxError/struct.error from some
    # damaged headers, and DecompressionBombError for a frame larger than its pixel limit.
    except (OSError, ValueError, SyntaxError, struct.error, Image.DecompressionBombError) as e:
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".strip(": ")


def _test_mask(sha1: list[str], files: list[str], fraction: float) -> np.ndarray:
    """(N,) bool: the first max(1, round(N f)) (at most N - 1) images in (content hash, path) order."""
    n = len(files)
    k = min(n - 1, max(1, round(n * fraction)))
    order = sorted(range(n), key=lambda i: (sha1[i], files[i]))
    mask = np.zeros(n, dtype=bool)
    mask[order[:k]] = True
    return mask


def scan_image_folder(path: str | os.PathLike[str], *, resolution: int = 32, channels: int = 3,
                      test_fraction: float = 0.1, cache_dir: str | os.PathLike[str] | None = None,
                      workers: int | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Every readable image of the folder, decoded: images (N, C, R, R) uint8, test mask (N,) bool, the record.

    From the cache when its key is there; otherwise decoded (in threads: PIL releases the GIL while decoding) and
    written to the cache (a read-only cache only costs the next load its decoding).
    """
    folder = ImageFolder(path)
    settings = {"format": _FORMAT, "resolution": resolution, "channels": channels, "test_fraction": test_fraction,
                "resize": "EXIF transpose, centre square crop ((w - s) // 2, (h - s) // 2), PIL bicubic"}
    key = hashlib.sha1(json.dumps({**settings, "content": folder.content}, sort_keys=True).encode(),
                       usedforsecurity=False).hexdigest()[:32]
    cache = Path(cache_dir).expanduser() if cache_dir is not None else image_cache_dir()
    hit = _load_cache(cache / f"{key}.npz", cache / f"{key}.json", (resolution, channels))
    if hit is not None:
        return hit[0], hit[1], {**hit[2], "record_file": str(cache / f"{key}.json")}
    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        decoded = list(pool.map(lambda f: _try_decode(folder.root / f, resolution, channels), folder.files))
    ok = [i for i, d in enumerate(decoded) if not isinstance(d, str)]
    bad = [{"file": folder.files[i], "error": d} for i, d in enumerate(decoded) if isinstance(d, str)]
    if len(ok) < 2:
        raise DataError(f"{folder.root}: {len(ok)} of {len(folder.files)} images could be decoded (first error: "
                        f"{bad[0]['file']}: {bad[0]['error']}); a train and a test split need at least 2")
    images = np.stack([decoded[i] for i in ok])  # (N, C, R, R)
    mask = _test_mask([folder.sha1[i] for i in ok], [folder.files[i] for i in ok], test_fraction)
    record = {**settings, "path": str(folder.root.resolve()), "content_sha1": folder.content,
              "n_files": len(folder.files), "n_train": int((~mask).sum()), "n_test": int(mask.sum()),
              "test": [folder.files[i] for i, m in zip(ok, mask, strict=True) if m],
              "train": [folder.files[i] for i, m in zip(ok, mask, strict=True) if not m], "unreadable": bad}
    _save_cache(cache / f"{key}.npz", cache / f"{key}.json", images, mask, record)
    return images, mask, {**record, "record_file": str(cache / f"{key}.json")}


def _load_cache(npz: Path, record: Path, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, dict] | None:
    try:
        with np.load(npz, allow_pickle=False) as f:
            images, mask = f["images"], f["test"]
        meta = json.loads(record.read_text())
    except (OSError, ValueError, KeyError, EOFError):  # absent, truncated or foreign: decode again
        return None
    resolution, channels = shape
    if images.dtype != np.uint8 or images.shape[1:] != (channels, resolution, resolution) or \
            mask.shape != images.shape[:1] or not isinstance(meta, dict):
        return None
    return images, mask.astype(bool), meta


def _save_cache(npz: Path, record: Path, images: np.ndarray, mask: np.ndarray, meta: dict) -> None:
    buf = io.BytesIO()
    np.savez(buf, images=images, test=mask)
    try:
        atomic_write_bytes(npz, buf.getvalue())
        atomic_write_bytes(record, json.dumps(meta, indent=1).encode())
    except OSError as e:  # a read-only cache: the next load decodes again
        log.warning("could not write the image cache %s (%s); the next load decodes the folder again", npz, e)


def load_image_folder(path: str | os.PathLike[str], split: str, *, resolution: int = 32, channels: int = 3,
                      test_fraction: float = 0.1, cache_dir: str | os.PathLike[str] | None = None) -> ImageDataset:
    """The ``train`` or ``test`` split of a folder of images: (N, C, R, R) uint8, named ``images:<content>``."""
    if split not in ("train", "test"):
        raise ValueError(f"a folder of images has the splits 'train' and 'test', not {split!r}")
    images, mask, record = scan_image_folder(path, resolution=resolution, channels=channels,
                                             test_fraction=test_fraction, cache_dir=cache_dir)
    bad = record.get("unreadable") or []
    if bad and record["content_sha1"] not in _WARNED:  # once per folder content and process, cached or not
        _WARNED.add(record["content_sha1"])
        log.warning("%s: skipped %d of %d files that could not be decoded (first: %s: %s); %s lists them",
                    path, len(bad), record["n_files"], bad[0]["file"], bad[0]["error"], record["record_file"])
    keep = mask if split == "test" else ~mask
    return ImageDataset(images=torch.from_numpy(np.ascontiguousarray(images[keep])),
                        name=f"images:{record['content_sha1'][:12]}", split=split)
