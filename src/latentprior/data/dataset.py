"""One dataset split held in memory as a single uint8 tensor.

Every dataset used here fits in memory as bytes (CelebA 64×64 train is about 2 GB), so batches are
drawn by indexing one tensor — on the GPU when the dataset has been moved there — with no DataLoader,
no workers and no per-item Python.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["ImageDataset"]


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """Images ``(N, C, H, W)`` uint8 with optional labels ``(N,)`` int64 and attributes ``(N, A)`` int8.

    ``attribute_names`` has one name per attribute column (empty when there are no attributes).
    ``eq=False``: datasets compare by identity, element-wise tensor equality has no single truth value.
    """

    images: Tensor
    labels: Tensor | None = None
    attributes: Tensor | None = None
    attribute_names: tuple[str, ...] = ()
    name: str = ""
    split: str = ""

    def __post_init__(self) -> None:
        x = self.images
        if not isinstance(x, Tensor) or x.dtype != torch.uint8 or x.dim() != 4:
            raise ValueError(f"images must be a uint8 tensor (N, C, H, W), got {_describe(x)}")
        if not x.is_contiguous():
            # Indexing a contiguous tensor is what makes batch() cheap; never hold a strided view.
            object.__setattr__(self, "images", x.contiguous())
        n = x.shape[0]
        if self.labels is not None:
            y = self.labels
            if not isinstance(y, Tensor) or y.dtype != torch.int64 or tuple(y.shape) != (n,):
                raise ValueError(f"labels must be an int64 tensor ({n},), got {_describe(y)}")
        a = self.attributes
        if a is not None:
            if not isinstance(a, Tensor) or a.dtype != torch.int8 or a.dim() != 2 or a.shape[0] != n:
                raise ValueError(f"attributes must be an int8 tensor ({n}, A), got {_describe(a)}")
            if len(self.attribute_names) != a.shape[1]:
                raise ValueError(
                    f"{a.shape[1]} attribute columns but {len(self.attribute_names)} attribute names"
                )
        elif self.attribute_names:
            raise ValueError("attribute_names given without attributes")
        object.__setattr__(self, "attribute_names", tuple(self.attribute_names))

    def __len__(self) -> int:
        return self.images.shape[0]

    def __repr__(self) -> str:
        extra = f", attributes={len(self.attribute_names)}" if self.attributes is not None else ""
        return (
            f"ImageDataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
            f"image_shape={self.image_shape}, labels={self.labels is not None}{extra}, "
            f"device={self.device})"
        )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W)."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    @property
    def device(self) -> torch.device:
        return self.images.device

    def to(self, device: torch.device | str) -> ImageDataset:
        """A copy with images, labels and attributes on ``device`` (self if already there)."""
        device = torch.device(device)
        if self.images.device == device:
            return self

        def move(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(device)

        return dataclasses.replace(
            self, images=self.images.to(device), labels=move(self.labels), attributes=move(self.attributes)
        )

    def batch(self, idx: Tensor) -> Tensor:
        """Images at ``idx`` (B,) as float32 ``(B, C, H, W)`` in [0, 1], on the images' device."""
        idx = torch.as_tensor(idx, dtype=torch.long).to(self.images.device, non_blocking=True)
        # Convert after indexing: only the B selected images are ever materialised as float.
        return self.images.index_select(0, idx).to(torch.float32).div_(255.0)

    def subset(self, n: int) -> ImageDataset:
        """The first ``n`` examples (for tests and quick runs); ``n`` larger than the dataset is an error."""
        if not 0 < n <= len(self):
            raise ValueError(f"subset size must be in 1..{len(self)}, got {n}")

        def head(t: Tensor | None) -> Tensor | None:
            return None if t is None else t[:n].contiguous()

        return dataclasses.replace(
            self, images=head(self.images), labels=head(self.labels), attributes=head(self.attributes)
        )


def _describe(t: object) -> str:
    if isinstance(t, Tensor):
        return f"{t.dtype} {tuple(t.shape)}"
    return type(t).__name__
