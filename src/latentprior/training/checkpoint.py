"""Self-describing, verified checkpoints.

A checkpoint holds the resolved config, the step, every module and optimizer state and the RNG states,
so :func:`load_run` can rebuild the model from the run directory alone. Files are written atomically and
listed in ``checkpoints/latest.json`` with their SHA-256; loading verifies the hash before unpickling
anything, and unpickles with ``weights_only=True`` (tensors and plain containers only).
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from pathlib import Path
from typing import Any

import torch

import latentprior
from latentprior.atomic import atomic_write_bytes
from latentprior.config import Config, config_from_dict, config_to_dict
from latentprior.errors import UserError

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "latest_checkpoint", "FORMAT"]

FORMAT = "latentprior-checkpoint/1"
_KEEP = 2  # older checkpoints beyond this many are deleted after a successful write


class CheckpointError(RuntimeError, UserError):
    """A checkpoint is missing, corrupt, or not a latentprior checkpoint."""


def _ckpt_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def save_checkpoint(run_dir: Path, cfg: Config, step: int, state: dict[str, Any]) -> Path:
    """Write ``checkpoints/step_{step:08d}.pt`` atomically and point ``latest.json`` at it."""
    payload = {
        "format": FORMAT,
        "library_version": latentprior.__version__,
        "torch_version": str(torch.__version__),
        "saved_at": time.time(),
        "config": config_to_dict(cfg),
        "step": int(step),
        **state,
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    data = buf.getvalue()
    d = _ckpt_dir(run_dir)
    path = d / f"step_{step:08d}.pt"
    atomic_write_bytes(path, data)
    index = {"file": path.name, "sha256": hashlib.sha256(data).hexdigest(), "step": int(step), "bytes": len(data)}
    atomic_write_bytes(d / "latest.json", json.dumps(index, indent=1).encode())
    for old in sorted(d.glob("step_*.pt"))[:-_KEEP]:
        if old != path:
            old.unlink(missing_ok=True)
    return path


def latest_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    """The ``latest.json`` index of a run, or None when the run has no checkpoint yet."""
    index = _ckpt_dir(run_dir) / "latest.json"
    if not index.exists():
        return None
    try:
        return json.loads(index.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{index} is corrupt ({e}); expected the JSON index written by latentprior") from e


def load_checkpoint(run_dir: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load the latest checkpoint of ``run_dir`` after verifying its SHA-256; config comes back as a Config."""
    index = latest_checkpoint(run_dir)
    if index is None:
        raise CheckpointError(f"no checkpoint in {_ckpt_dir(run_dir)} (expected latest.json and step_*.pt)")
    path = _ckpt_dir(run_dir) / index["file"]
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} listed in latest.json is missing")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != index["sha256"]:
        raise CheckpointError(
            f"checkpoint {path} is corrupt: sha256 {digest} but latest.json expects {index['sha256']} "
            f"({len(data)} bytes, expected {index.get('bytes')}); refusing to load it"
        )
    try:
        payload = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as e:  # a valid hash over an unreadable file means it was never a checkpoint of ours
        raise CheckpointError(f"{path} could not be read as a checkpoint: {e}") from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} file (format={payload.get('format')!r})")
    payload["config"] = config_from_dict(payload["config"])
    return payload
