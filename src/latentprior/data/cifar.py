"""CIFAR-10 from the official python-pickle batches, read with a restricted unpickler.

Layout: ``DATA_DIR/cifar10/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}`` — what the
official ``cifar-10-python.tar.gz`` unpacks to under ``DATA_DIR/cifar10/``. Each batch is a dict with
``data`` uint8 (10000, 3072) in channel-major (C, H, W) order and ``labels`` (a list of 0..9).

A pickle can run arbitrary code on load, and a data directory is user-supplied, so the batches are
never read with plain ``pickle.load``: :class:`RestrictedUnpickler` resolves only the few globals a
numpy array needs and refuses everything else.
"""

from __future__ import annotations

import codecs
import io
import pickle
import pickletools
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .dataset import ImageDataset
from .download import download_file, extract_tar
from .files import DataError, require_file

__all__ = ["CIFAR10_ARCHIVE", "CIFAR10_FILES", "MAX_BATCH_BYTES", "RestrictedUnpickler", "load_cifar10", "read_batch"]

FOLDER = "cifar10"
BATCHES = "cifar-10-batches-py"

# (url, md5) of the official archive
CIFAR10_ARCHIVE = (
    "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "c58f30108f718f92721af3b95e74349a",
)

CIFAR10_FILES: dict[str, str] = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}

_SPLIT_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
_NUM_CLASSES = 10
_ROW = 3 * 32 * 32
MAX_BATCH_BYTES = 1 << 28  # an official batch is 31 MB; a larger file is refused before it is read


def _numpy_core() -> Any:
    # numpy >= 2 moved numpy.core to numpy._core and keeps a warning shim under the old name; pickles
    # written by numpy 1 (the official archive) name numpy.core, so both names resolve to the new module.
    try:
        from numpy import _core
    except ImportError:  # numpy < 2
        from numpy import core as _core
    return _core


def _refuse(what: str) -> DataError:
    return DataError(f"refusing to unpickle {what}: a CIFAR batch holds only numpy arrays")


class _NDArrayRef:
    """Stands for ``numpy.ndarray`` in a pickle: official batches only pass the class to ``_reconstruct``;
    calling it (REDUCE) would allocate whatever shape the file claims, so a call is refused. No slots: a
    pickle's BUILD cannot set attributes on the one shared instance."""

    __slots__ = ()

    def __call__(self, *args: object) -> None:
        raise _refuse("a call of numpy.ndarray (it allocates the shape a file claims)")


def _checked_dtype(*args: Any) -> np.dtype:
    dt = np.dtype(*args)
    if dt.hasobject:  # object arrays unpickle arbitrary Python objects element by element
        raise _refuse(f"an array of Python objects (dtype {dt})")
    return dt


def _safe_reconstruct(reconstruct: Any) -> Any:
    def build(subtype: object, shape: Any, dtype: Any) -> np.ndarray:
        # numpy's own pickles call this with shape (0,) and fill the array from bytes afterwards (BUILD);
        # a non-empty shape would allocate memory no byte of the file pays for.
        if not isinstance(subtype, _NDArrayRef) or shape != (0,):
            raise _refuse(f"numpy _reconstruct({type(subtype).__name__}, shape {shape!r:.40})")
        return reconstruct(np.ndarray, (0,), _checked_dtype(dtype))

    return build


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    # Python 3 writes protocol-2 bytes as _codecs.encode(str, 'latin1'); other codecs (bz2, zlib) are refused.
    if encoding not in ("latin1", "latin-1"):
        raise _refuse(f"_codecs.encode with codec {encoding!r}")
    return codecs.encode(text, encoding)


def _allowed() -> dict[tuple[str, str], Any]:
    core = _numpy_core()
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): _NDArrayRef(),
        ("numpy", "dtype"): _checked_dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    for mod in ("numpy.core", "numpy._core"):
        allowed[(f"{mod}.multiarray", "_reconstruct")] = _safe_reconstruct(core.multiarray._reconstruct)
        allowed[(f"{mod}.multiarray", "scalar")] = core.multiarray.scalar
        allowed[(f"{mod}.numeric", "_frombuffer")] = core.numeric._frombuffer  # protocol-5 arrays
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only builtins and numpy arrays; any other global raises :class:`DataError`.

    The numpy globals it resolves are guarded: none of them can allocate more than the file's own bytes or
    build an array of Python objects.
    """

    _allowed: dict[tuple[str, str], Any] | None = None

    def find_class(self, module: str, name: str) -> Any:
        if RestrictedUnpickler._allowed is None:
            RestrictedUnpickler._allowed = _allowed()
        try:
            return RestrictedUnpickler._allowed[(module, name)]
        except KeyError:
            raise _refuse(f"global {module}.{name}") from None


def _key(k: object) -> object:
    # The official batches were pickled by Python 2, so with encoding='bytes' their keys are bytes;
    # a batch re-written by Python 3 may use str keys. Normalise to str.
    return k.decode("latin1") if isinstance(k, bytes) else k


def read_batch(path: Path) -> dict[str, Any]:
    """Unpickle one CIFAR file (restricted) into a dict with str keys.

    The file is read whole (at most ``MAX_BATCH_BYTES``) and its opcodes are walked once before unpickling:
    the walk checks every length field against the bytes actually there, because the C unpickler allocates
    a string's claimed length before reading it.
    """
    try:
        size = path.stat().st_size
        if size > MAX_BATCH_BYTES:
            raise DataError(f"{path.name} at {path} is {size} bytes, more than a CIFAR batch ({MAX_BATCH_BYTES})")
        data = path.read_bytes()
        for _ in pickletools.genops(data):
            pass
        # encoding='bytes' keeps Python 2 strings (the pixel buffer among them) as raw bytes.
        obj = RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except DataError as err:
        raise DataError(f"{path.name} at {path}: {err}") from None
    except Exception as err:  # truncated or garbled pickles raise many types (EOFError, UnpicklingError, ...)
        raise DataError(f"{path.name} at {path} is not a readable CIFAR pickle: {err!r}") from err
    if not isinstance(obj, dict):
        raise DataError(f"{path.name} at {path} holds a {type(obj).__name__}, expected a dict")
    return {_key(k): v for k, v in obj.items()}


def _images_and_labels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = read_batch(path)
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _ROW:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path.name} at {path}: 'data' must be uint8 (N, {_ROW}), got {got}")
    try:
        y = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError, OverflowError) as err:  # OverflowError: an integer beyond int64
        raise DataError(f"{path.name} at {path}: 'labels' is not a list of integers") from err
    if y.shape != (data.shape[0],):
        raise DataError(f"{path.name} at {path}: {data.shape[0]} images but labels of shape {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= _NUM_CLASSES):
        raise DataError(f"{path.name} at {path}: labels outside 0..9 ({y.min()}..{y.max()})")
    return data, y


def _download(root: Path, verify: bool) -> None:
    url, md5 = CIFAR10_ARCHIVE
    archive = root / url.rsplit("/", 1)[1]
    if archive.is_file():  # an archive already there (an earlier download, a user's copy) is checked first
        require_file(archive, md5, verify=verify, source=url)
    else:
        download_file(url, archive, md5)
    extract_tar(archive, root)


def load_cifar10(split: str, data_dir: Path, *, verify: bool, download: bool) -> ImageDataset:
    """CIFAR-10 ``train`` (50,000) or ``test`` (10,000): images (N, 3, 32, 32) uint8, labels (N,)."""
    root = data_dir / FOLDER
    folder = root / BATCHES
    names = [*_SPLIT_FILES[split], "batches.meta"]
    if download and not all((folder / n).is_file() for n in names):
        _download(root, verify)
    url, archive_md5 = CIFAR10_ARCHIVE
    source = f"{url} (md5 {archive_md5}; unpack it into {root})"
    paths = [require_file(folder / n, CIFAR10_FILES[n], verify=verify, source=source) for n in names]

    meta = read_batch(paths[-1])  # only structure: the class names are fixed, but a wrong file shows here
    label_names = meta.get("label_names")
    if not isinstance(label_names, list) or len(label_names) != _NUM_CLASSES:
        raise DataError(f"batches.meta at {paths[-1]}: expected 10 'label_names', got {label_names!r:.80}")

    parts = [_images_and_labels(p) for p in paths[:-1]]
    data = np.concatenate([d for d, _ in parts])
    labels = np.concatenate([y for _, y in parts])
    images = torch.from_numpy(data).view(-1, 3, 32, 32)  # rows are already channel-major: (N, C, H, W)
    return ImageDataset(images=images, labels=torch.from_numpy(labels), name="cifar10", split=split)
