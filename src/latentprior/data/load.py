"""``load_dataset``: one entry point from a dataset name and split to an in-memory :class:`ImageDataset`."""

from __future__ import annotations

import os
from typing import Any

from .celeba import load_celeba
from .cifar import load_cifar10
from .dataset import ImageDataset
from .digits import load_digits
from .files import DataError, resolve_data_dir
from .idx import load_idx_dataset
from .images import load_image_folder

__all__ = ["DATASETS", "SPLITS", "SIZES", "load_dataset", "load_split"]

# dataset name -> the splits it has (CelebA alone publishes a validation split)
SPLITS: dict[str, tuple[str, ...]] = {
    "digits": ("train", "test"),
    "mnist": ("train", "test"),
    "fashion_mnist": ("train", "test"),
    "cifar10": ("train", "test"),
    "celeba": ("train", "valid", "test"),
}
DATASETS: tuple[str, ...] = tuple(SPLITS)
# dataset name -> split -> number of images (the table below), known without reading the files
SIZES: dict[str, dict[str, int]] = {
    "digits": {"train": 1500, "test": 297},
    "mnist": {"train": 60000, "test": 10000},
    "fashion_mnist": {"train": 60000, "test": 10000},
    "cifar10": {"train": 50000, "test": 10000},
    "celeba": {"train": 162770, "valid": 19867, "test": 19962},
}


def load_dataset(
    name: str,
    split: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    verify: bool = True,
    download: bool = False,
) -> ImageDataset:
    """Load one split of a dataset into memory: images (N, C, H, W) uint8 on the CPU.

    ======================  =================  =====================================  ===================
    name                    image shape        splits (N)                             extra
    ======================  =================  =====================================  ===================
    ``digits``              (1, 28, 28)        train 1,500 / test 297                 labels 0..9
    ``mnist``               (1, 28, 28)        train 60,000 / test 10,000             labels 0..9
    ``fashion_mnist``       (1, 28, 28)        train 60,000 / test 10,000             labels 0..9
    ``cifar10``             (3, 32, 32)        train 50,000 / test 10,000             labels 0..9
    ``celeba``              (3, 64, 64)        train 162,770 / valid 19,867 / 19,962  40 attributes 0/1
    ======================  =================  =====================================  ===================

    ``data_dir`` defaults to ``$LATENTPRIOR_DATA_DIR`` (``digits`` needs none). ``verify`` checks every file
    against its official md5 before reading it; ``verify=False`` accepts other copies but still checks their
    structure. ``download`` fetches missing files from the official source (not possible for CelebA).
    Problems with files raise :class:`~latentprior.data.files.DataError`; an unknown name or split raises
    ``ValueError``.
    """
    if name not in SPLITS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    if split not in SPLITS[name]:
        raise ValueError(f"{name} has no split {split!r}; it has: {', '.join(SPLITS[name])}")
    if name == "digits":
        return load_digits(split)
    root = resolve_data_dir(data_dir)
    if name == "cifar10":
        return load_cifar10(split, root, verify=verify, download=download)
    if name == "celeba":
        return load_celeba(split, root, verify=verify, download=download)
    return load_idx_dataset(name, split, root, verify=verify, download=download)


def load_split(data: Any, split: str, data_dir: str | os.PathLike[str] | None = None) -> ImageDataset:
    """The ``split`` of the data a run's config names (its ``data`` section, a
    :class:`~latentprior.config.DataConfig`): a named dataset, or a folder of images (``data.name: images``).

    ``data_dir`` overrides ``data.dir``. Images passed from Python (``data.name: custom``) cannot be found again:
    a :class:`DataError` says to pass them (e.g. ``latentprior.evaluate(..., reference=images)``).
    """
    if data.name == "images":
        return load_image_folder(data.path, split, resolution=data.image_resolution, channels=data.image_channels,
                                 test_fraction=data.image_test_fraction)
    if data.name == "custom":
        raise DataError(f"this run trained on images passed from Python (data.name: custom), which cannot be loaded "
                        f"again for its {split} split: pass them, e.g. latentprior.evaluate(model, "
                        "reference=test_images), or train on a folder (data.name: images) or a named dataset")
    return load_dataset(data.name, split, data_dir if data_dir is not None else data.dir, verify=data.verify,
                        download=getattr(data, "download", False) and split == "train")
