"""Binary attributes of images, the targets of the attribute classifiers behind linear separability.

An :class:`AttributeSet` names A binary attributes and turns a dataset split into labels (N, A) in {0, 1}:

* ``classes`` — one-vs-rest classes ``class_0`` .. ``class_9`` (MNIST, Fashion-MNIST, CIFAR-10, digits): each
  is positive on about 10 % of the images, the imbalanced case that linear separability is sensitive to;
* ``morpho`` — MNIST stroke morphology in the spirit of Morpho-MNIST (Castro et al., 2019), measured by
  :func:`measure_morphology` and binarised at the median of the first :data:`MEDIAN_IMAGES` training images
  (positive: at or above it): ``thick``, ``slanted`` (leans right), ``wide``, ``tall``. MNIST digits are
  size-normalised into a 20-pixel box, so most measure 20 pixels tall: ``tall`` marks the full-height digits
  (about 90 %), the other three are about 50 % positive;
* ``classes+morpho`` — both (the default for MNIST and digits);
* ``celeba`` — CelebA's 40 annotated attributes, as the dataset loads them (the default for CelebA).

API (used by the disentanglement study)::

    attrs = attribute_set(train, kind="default")    # thresholds come from ``train``; attrs.names: (A,)
    y = attrs.labels(split)                         # (N, A) float32 in {0, 1}
    attrs.key()                                     # everything that changes the labels (a cache-key part)
    m = measure_morphology(images)                  # (N, 4) float64: thickness, slant, width, height

Measurements (:func:`measure_morphology`), on the image binarised at ``INK_THRESHOLD`` (ink: pixel >= 128 of
255), with x to the right and y downwards, in pixels:

* thickness = 2 · mean(EDT over the ridge) − 1, where EDT is each ink pixel's Euclidean distance to the nearest
  background pixel and the ridge (a discrete medial axis) is the ink pixels that are the maximum of the EDT in
  their 3×3 neighbourhood. The ridge of a straight stroke of odd width w has EDT (w + 1) / 2, so this gives w;
  for an even width the ridge is two pixels wide with EDT w / 2, giving w − 1.
* slant = atan(−cov(x, y) / var(y)) over ink pixels, in radians: the horizontal shear of the stroke, positive
  when the top leans right (y grows downwards, so a right-leaning stroke has cov(x, y) < 0).
* width = the extent of x' = x + tan(slant) · (y − ȳ) over ink pixels, plus one: the width of the digit
  after undoing its slant (Morpho-MNIST's bounding parallelogram; a slanted bar of width w measures ≈ w).
* height = the extent of y over ink pixels, plus one.

An image with no ink measures NaN, and is negative on every morphological attribute.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

from latentprior.errors import UserError

__all__ = ["ATTRIBUTE_KINDS", "INK_THRESHOLD", "MEDIAN_IMAGES", "MORPHO_NAMES", "AttributeSet", "AttributeSetError",
           "attribute_set", "measure_morphology", "resolve_kind"]

INK_THRESHOLD = 128
MORPHO_NAMES = ("thickness", "slant", "width", "height")
# The attribute each measurement becomes once binarised at the median ("above the median" is positive).
_MORPHO_ATTRIBUTES = ("thick", "slanted", "wide", "tall")
MEDIAN_IMAGES = 10_000  # enough for a stable median; measuring all 60,000 takes half a minute
ATTRIBUTE_KINDS = ("default", "classes", "morpho", "classes+morpho", "celeba")
_CLASS_DATASETS = ("mnist", "fashion_mnist", "cifar10", "digits")
_MORPHO_DATASETS = ("mnist", "digits")


class AttributeSetError(ValueError, UserError):
    """An attribute kind the dataset cannot give (morphology of colour images, classes without labels...)."""


def _stacked(ink: np.ndarray) -> np.ndarray:
    """(N, H, W) bool -> one (N·(H+2), W+2) image: each image framed by background, so that one distance
    transform of the stack is the per-image transform (no distance crosses a frame)."""
    return np.pad(ink, ((0, 0), (1, 1), (1, 1))).reshape(-1, ink.shape[2] + 2)


def _thickness(ink: np.ndarray) -> np.ndarray:
    n, h, w = ink.shape
    flat = _stacked(ink)
    edt = ndimage.distance_transform_edt(flat)
    ridge = flat & (edt == ndimage.maximum_filter(edt, size=3))
    owner = np.repeat(np.arange(n), (h + 2) * (w + 2)).reshape(flat.shape)  # image index of each pixel
    count = np.bincount(owner[ridge], minlength=n)
    total = np.bincount(owner[ridge], weights=edt[ridge], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 2.0 * total / count - 1.0


def measure_morphology(images: Tensor | np.ndarray, threshold: int = INK_THRESHOLD) -> np.ndarray:
    """Thickness, slant, width and height (module docstring) of grayscale images.

    images: (N, 1, H, W) or (N, H, W) uint8 in 0..255. Returns (N, 4) float64, columns :data:`MORPHO_NAMES`.
    """
    a = images.cpu().numpy() if isinstance(images, Tensor) else np.asarray(images)
    if a.ndim == 4:
        if a.shape[1] != 1:
            raise AttributeSetError(f"morphology is measured on grayscale images, got {a.shape[1]} channels")
        a = a[:, 0]
    ink = a >= threshold  # (N, H, W)
    n, h, w = ink.shape
    mass = ink.sum((1, 2)).astype(np.float64)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        my, mx = (ink * y).sum((1, 2)) / mass, (ink * x).sum((1, 2)) / mass
        dy, dx = y - my[:, None, None], x - mx[:, None, None]  # (N, H, W)
        cov_xy = (ink * dx * dy).sum((1, 2)) / mass
        var_y = (ink * dy * dy).sum((1, 2)) / mass
        slant = np.arctan(-cov_xy / var_y)
    deslanted = x + np.tan(slant)[:, None, None] * dy  # x' (N, H, W)
    width = np.where(ink, deslanted, -np.inf).max((1, 2)) - np.where(ink, deslanted, np.inf).min((1, 2)) + 1
    height = np.where(ink, y, -np.inf).max((1, 2)) - np.where(ink, y, np.inf).min((1, 2)) + 1
    out = np.stack([_thickness(ink), slant, width, height], axis=1)
    out[mass == 0] = np.nan
    return out


@dataclass(frozen=True)
class AttributeSet:
    """A named list of binary attributes; ``thresholds`` are the morphology medians (one per morpho attribute)."""

    name: str
    dataset: str
    names: tuple[str, ...]
    thresholds: tuple[float, ...] = ()

    def __len__(self) -> int:
        return len(self.names)

    def key(self) -> dict:
        """Everything that changes :meth:`labels` (a part of the classifier's cache key)."""
        return {"name": self.name, "dataset": self.dataset, "names": list(self.names),
                "thresholds": [float(t) for t in self.thresholds], "ink_threshold": INK_THRESHOLD}

    def labels(self, data, count: int | None = None) -> Tensor:
        """Labels of the first ``count`` (default: all) items of an :class:`~latentprior.data.ImageDataset`
        split: (N, A) float32 in {0, 1}."""
        sl = slice(0, count)
        parts = []
        if self.name in ("classes", "classes+morpho"):
            parts.append(torch.nn.functional.one_hot(data.labels[sl].cpu(), 10).float())
        if self.name in ("morpho", "classes+morpho"):
            m = torch.from_numpy(measure_morphology(data.images[sl]))  # (N, 4), NaN compares False: negative
            parts.append((m >= torch.tensor(self.thresholds, dtype=m.dtype)).float())
        if self.name == "celeba":
            parts.append(data.attributes[sl].cpu().float())
        return torch.cat(parts, dim=1)


def resolve_kind(dataset: str, kind: str) -> str:
    """The attribute kind ``kind`` stands for on ``dataset`` (``default`` resolved); raises
    :class:`AttributeSetError` when the dataset has no such attributes."""
    if kind not in ATTRIBUTE_KINDS:
        raise AttributeSetError(f"unknown attribute kind {kind!r}; known: {', '.join(ATTRIBUTE_KINDS)}")
    if kind == "default":
        kind = ("classes+morpho" if dataset in _MORPHO_DATASETS else "classes" if dataset in _CLASS_DATASETS
                else "celeba" if dataset == "celeba" else "none")
    ok = {"classes": _CLASS_DATASETS, "morpho": _MORPHO_DATASETS, "classes+morpho": _MORPHO_DATASETS,
          "celeba": ("celeba",)}.get(kind, ())
    if dataset not in ok:
        raise AttributeSetError(f"dataset {dataset!r} has no {kind!r} attributes; "
                                f"they exist for: {', '.join(ok) if ok else 'no dataset'}")
    return kind


def attribute_set(train, kind: str = "default") -> AttributeSet:
    """The attribute set ``kind`` of ``train``'s dataset; morphology thresholds are medians over ``train``."""
    kind = resolve_kind(train.name, kind)
    names: tuple[str, ...] = ()
    thresholds: tuple[float, ...] = ()
    if kind in ("classes", "classes+morpho"):
        names += tuple(f"class_{i}" for i in range(10))
    if kind in ("morpho", "classes+morpho"):
        names += _MORPHO_ATTRIBUTES
        medians = np.nanmedian(measure_morphology(train.images[:MEDIAN_IMAGES]), axis=0)
        thresholds = tuple(float(t) for t in medians)
    if kind == "celeba":
        names = tuple(train.attribute_names)
    return AttributeSet(kind, train.name, names, thresholds)
