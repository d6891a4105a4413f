"""Which device a run trains on, and how much memory it used there."""

from __future__ import annotations

import resource

import torch

from latentprior.errors import UserError

__all__ = ["resolve_device", "peak_memory_mb", "DeviceUnavailable"]


class DeviceUnavailable(RuntimeError, UserError):
    """The configured device does not exist on this machine."""



def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; anything else is passed to torch.device (validated)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise DeviceUnavailable(f"device {name!r} is not a torch device (expected auto, cpu, cuda or cuda:N)") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailable(f"device {name!r} asks for CUDA, but this torch build sees no CUDA device; "
                                "use --device cpu / train.device: cpu (or auto)")
    return dev


def peak_memory_mb(device: torch.device) -> float:
    """Peak allocated tensor memory on a CUDA device; on the CPU the process's peak resident set (MiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
