"""Self-describing, verified checkpoints, and what may change when a run is resumed.

A checkpoint holds the resolved config, the step, every module and optimizer state, the gradient scaler's
state and the RNG states, so :func:`load_run` can rebuild the model from the run directory alone. Files are
written atomically and listed in ``checkpoints/latest.json`` with their SHA-256; loading verifies the hash
before unpickling anything, and unpickles with ``weights_only=True`` (tensors and plain containers only).

This module does not import the training loop: evaluation, figures and benchmarks load models through it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import time
from pathlib import Path
from typing import Any

import torch

import latentprior
from latentprior.atomic import atomic_write_bytes
from latentprior.config import Config, config_from_dict, config_to_dict
from latentprior.errors import UserError
from latentprior.models import LatentAutoencoder, build_model
from latentprior.training.device import resolve_device

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "latest_checkpoint", "load_run",
           "check_resumable", "FORMAT"]

FORMAT = "latentprior-checkpoint/1"
_FILE_NAME = re.compile(r"step_\d{8,}\.pt")
_SHA256 = re.compile(r"[0-9a-f]{64}")
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
    """The ``latest.json`` index of a run, or None when the run has no checkpoint yet.

    The index is checked before anything trusts it: a mapping with a plain file name ``step_*.pt`` (no path,
    so a hostile index cannot point outside the run), a hex SHA-256 and an integer step.
    """
    index = _ckpt_dir(run_dir) / "latest.json"
    if not index.exists():
        return None
    try:
        data = json.loads(index.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{index} is corrupt ({_first_line(e)}); expected the JSON index written by "
                              "latentprior") from e
    ok = (isinstance(data, dict) and isinstance(data.get("file"), str) and _FILE_NAME.fullmatch(data["file"])
          and isinstance(data.get("sha256"), str) and _SHA256.fullmatch(data["sha256"])
          and isinstance(data.get("step"), int))
    if not ok:
        raise CheckpointError(f"{index} is not a latentprior checkpoint index (expected {{file: step_N.pt, "
                              "sha256, step, bytes}})")
    return data


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def load_checkpoint(run_dir: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load the latest checkpoint of ``run_dir`` after verifying its SHA-256; config comes back as a Config."""
    index = latest_checkpoint(run_dir)
    if index is None:
        raise CheckpointError(f"no checkpoint in {_ckpt_dir(run_dir)} (expected latest.json and step_*.pt)")
    path = _ckpt_dir(run_dir) / index["file"]
    if not path.is_file():
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
        raise CheckpointError(f"{path} could not be read as a checkpoint: {_first_line(e)}") from e
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path} holds a {type(payload).__name__}, not a {FORMAT} payload (a dict)")
    if payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} file (format={payload.get('format')!r})")
    missing = sorted({"config", "step", "model", "image_shape"} - set(payload))
    if missing:
        raise CheckpointError(f"{path} lacks {missing}; it was not written by latentprior's training loop")
    payload["config"] = config_from_dict(payload["config"])
    return payload


def load_run(run_dir: str | Path, device: str | torch.device | None = None) -> tuple[LatentAutoencoder, Config]:
    """Rebuild a trained model from its run directory's latest checkpoint alone; eval mode."""
    dev = resolve_device("auto") if device is None else torch.device(device)
    ckpt = load_checkpoint(Path(run_dir), map_location=dev)
    cfg: Config = ckpt["config"]
    model = build_model(cfg, tuple(ckpt["image_shape"]))
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, TypeError, AttributeError) as e:  # keys or shapes that do not match its own config
        raise CheckpointError(f"{run_dir}: the checkpoint's weights do not fit the model its config describes "
                              f"({_first_line(e)})") from e
    return model.to(dev).eval(), cfg


def check_resumable(saved: Config, cfg: Config) -> None:
    """Refuse to continue the run saved with ``saved`` under a ``cfg`` that changes what is trained.

    A key may change when its config field says so (``metadata={"resume_may_change": True}``: the budget and
    bookkeeping keys of ``TrainConfig``), and ``data.dir`` may: it says where the files are, not what they are.
    """
    for section in dataclasses.fields(saved):
        a, b = getattr(saved, section.name), getattr(cfg, section.name)
        for f in dataclasses.fields(a):
            if f.metadata.get("resume_may_change") or (section.name, f.name) == ("data", "dir"):
                continue
            was, now = getattr(a, f.name), getattr(b, f.name)
            if was != now:
                raise CheckpointError(
                    f"the run directory holds a run with {section.name}.{f.name}={was!r}, but this config has "
                    f"{now!r}; use a new --out directory, or `latentprior resume` to continue it as saved"
                )
