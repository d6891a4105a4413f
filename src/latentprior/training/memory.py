"""How much memory a run's states need, estimated from its config before anything is built, and the refusal
when that exceeds the device's memory (``train.max_memory_gb``).

A config can ask for a model no machine holds (``model.latent_dim: 100000`` on the default nets is 9e9
parameters); building it would spend minutes allocating before dying in the allocator, or in the kernel's
out-of-memory killer, with no message. The estimate builds the model on PyTorch's ``meta`` device, where a
tensor has a shape and a dtype but no storage, so counting costs milliseconds whatever the size:

    states     = weights + buffers + gradients + Adam's two moments        (trainable parameters: 4 copies)
    images     = the training split, uint8                                  (moved to the device with the model)
    checkpoint = 2 x (saved weights + buffers + Adam's moments)             (host RAM: torch.save into a buffer,
                                                                             then the bytes written out)

A CPU run needs all three in RAM (each of ``LOCAL_WORLD_SIZE`` torchrun processes holds its own states); a CUDA
run needs states + images on its GPU and the checkpoint in RAM. Activations come on top and are not estimated:
they scale with ``train.batch_size`` and the nets, which is why the default limit is 90% of the memory, not all of it.

A module that cannot be built on ``meta`` (zuko's MADE computes its masks with ``unique``, which needs values)
is counted exactly by building it for 2, 3 and 4 latent dimensions on the CPU and extrapolating: every size
here is a polynomial of degree <= 2 in ``model.latent_dim`` (linear layers in and out of the latent space,
Glow's D x D maps), so three points determine it.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch

from latentprior.config import Config, ConfigError
from latentprior.errors import UserError
from latentprior.models import build_model

__all__ = ["MemoryEstimate", "MemoryBudgetError", "estimate_memory", "check_memory", "device_memory"]

_GIB = 2**30
_DEFAULT_FRACTION = 0.9


class MemoryBudgetError(ConfigError):
    """A run's estimated memory exceeds its device's (or ``train.max_memory_gb``)."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of each part of a run's memory (module docstring)."""

    parameters: int  # number of parameters (trainable or not)
    weights: int  # parameters + buffers
    trainable: int  # bytes of the trainable parameters (their gradients and each Adam moment take as much)
    saved: int  # bytes of the weights a checkpoint holds (the frozen perceptual trunk is not saved)
    images: int

    @property
    def states(self) -> int:
        return self.weights + 3 * self.trainable

    @property
    def checkpoint(self) -> int:
        return 2 * (self.saved + 2 * self.trainable)

    def describe(self) -> str:
        g = lambda b: f"{b / _GIB:.3g}"  # noqa: E731
        return (f"{self.parameters:.3g} parameters: weights {g(self.weights)} GiB, gradients and Adam's moments "
                f"{g(3 * self.trainable)}, images {g(self.images)}, a checkpoint's copy {g(self.checkpoint)}")


def _sizes(model: torch.nn.Module) -> tuple[int, int, int, int]:
    params = list(model.parameters())
    n = sum(p.numel() for p in params)
    weights = sum(t.numel() * t.element_size() for t in [*params, *model.buffers()])
    trainable = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    saved = sum(t.numel() * t.element_size() for t in model.state_dict().values() if isinstance(t, torch.Tensor))
    return n, weights, trainable, saved


def _build_on_meta(cfg: Config, image_shape: tuple[int, int, int]) -> tuple[int, int, int, int]:
    with warnings.catch_warnings():  # loading a frozen trunk's weights into meta tensors is a no-op, and says so
        warnings.simplefilter("ignore")
        with torch.device("meta"):
            return _sizes(build_model(cfg, image_shape))


def _extrapolated(cfg: Config, image_shape: tuple[int, int, int]) -> tuple[int, int, int, int]:
    """The sizes at ``cfg.model.latent_dim``, from exact CPU builds at D = 2, 3, 4 (module docstring)."""
    points = []
    for d in (2, 3, 4):
        points.append(_sizes(build_model(cfg.replace(**{"model.latent_dim": d}), image_shape)))
    d = cfg.model.latent_dim
    out = []
    for y2, y3, y4 in zip(*points, strict=True):  # Newton's forward differences at 2, 3, 4
        first, second = y3 - y2, y4 - 2 * y3 + y2
        out.append(y2 + first * (d - 2) + second * (d - 2) * (d - 3) // 2)
    return tuple(out)  # type: ignore[return-value]


def estimate_memory(cfg: Config, image_shape: tuple[int, int, int], n_images: int = 0) -> MemoryEstimate:
    """The memory ``cfg`` needs to train on ``n_images`` images of ``image_shape`` (C, H, W); nothing is
    allocated but, for modules ``meta`` cannot build, three small CPU copies (module docstring)."""
    with torch.random.fork_rng(devices=[]):  # whatever building draws, the caller's RNG stays as it was
        try:
            n, weights, trainable, saved = _build_on_meta(cfg, image_shape)
        except UserError:
            raise  # the real build would refuse the same way (e.g. a missing weights file)
        except Exception:  # noqa: BLE001 - an operator without a meta kernel
            n, weights, trainable, saved = _extrapolated(cfg, image_shape)
    c, h, w = image_shape
    return MemoryEstimate(n, weights, trainable, saved, n_images * c * h * w)


def _ram() -> int | None:
    """Bytes of RAM this process may use: the machine's, or its cgroup's limit when lower; None if unknown."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = open(limit).read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def device_memory(device: torch.device) -> tuple[int | None, str]:
    """(bytes, what they are) of ``device``'s memory: a GPU's total, else the RAM (MPS shares it)."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.cuda.get_device_properties(index).total_memory, f"GPU {index}'s"
    return _ram(), "this machine's RAM"


def check_memory(cfg: Config, image_shape: tuple[int, int, int], n_images: int, device: torch.device) -> None:
    """Refuse, in one line naming the keys to change, a run whose estimated memory exceeds its device's limit:
    ``train.max_memory_gb`` GiB, or 90% of the device's memory when it is null; 0 turns the check off."""
    set_limit = cfg.train.max_memory_gb
    if set_limit == 0:
        return
    est = estimate_memory(cfg, image_shape, n_images)
    local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))  # torchrun processes sharing this machine's RAM
    checks = []  # (bytes needed, bytes allowed, which memory)
    if device.type == "cuda":
        checks.append((est.states + est.images, *device_memory(device)))
        checks.append((est.checkpoint, _ram(), "this machine's RAM (for the checkpoint)"))
    else:
        checks.append((local * (est.states + est.images) + est.checkpoint, *device_memory(device)))
    for needed, total, what in checks:
        if set_limit is not None:
            allowed, source = set_limit * _GIB, f"train.max_memory_gb = {set_limit:g}"
        elif total is not None:
            allowed, source = _DEFAULT_FRACTION * total, f"90% of {what} {total / _GIB:.3g} GiB"
        else:
            continue  # nothing known to compare with
        if needed > allowed:
            raise MemoryBudgetError(
                f"this config needs an estimated {needed / _GIB:.3g} GiB ({est.describe()}), more than the "
                f"{allowed / _GIB:.3g} GiB allowed ({source}); make the model smaller (model.latent_dim is "
                f"{cfg.model.latent_dim}, net.width {cfg.net.width:g}, prior.hidden {cfg.prior.hidden}, prior.layers "
                f"{cfg.prior.layers}), or set train.max_memory_gb to the GiB this run may use (0: no check)")
