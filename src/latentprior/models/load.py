"""Rebuild a trained model from a run directory: the verified checkpoint (rundir/checkpoints.py) through
:func:`~latentprior.models.build.build_model`.

This is the one place a finished run becomes a module again; evaluation, studies, the generation verbs and
benchmarks all call :func:`load_run`, and :func:`load_into` loads a run's weights into a model you built yourself
(a run trained from Python with your own modules, which no config can rebuild). It does not import the training
loop.
"""

from __future__ import annotations

import os

import torch

from latentprior.config import Config
from latentprior.models.autoencoder import LatentAutoencoder
from latentprior.models.build import build_model
from latentprior.rundir.checkpoints import CheckpointError, load_checkpoint
from latentprior.rundir.layout import RunDir

__all__ = ["load_run", "load_into", "load_state_into"]


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_state_into(model: torch.nn.Module, state: dict, where: str | os.PathLike[str]) -> None:
    """``model.load_state_dict(state)``, with a mismatch (missing or unexpected keys, other shapes) as one line."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError, KeyError) as e:
        first = str(e).strip().splitlines()
        detail = " ".join(ln.strip() for ln in first[:3]) if first else type(e).__name__
        raise CheckpointError(f"{where}: the checkpoint's weights do not fit the model ({detail[:400]})") from e


def load_run(run_dir: str | os.PathLike[str] | RunDir, device: str | torch.device | None = None
             ) -> tuple[LatentAutoencoder, Config]:
    """Rebuild a trained model from its run directory's latest checkpoint alone; eval mode, on ``device``
    (default: CUDA when available)."""
    dev = _default_device() if device is None else torch.device(device)
    ckpt = load_checkpoint(run_dir, map_location=dev)
    cfg: Config = ckpt["config"]
    model = build_model(cfg, tuple(ckpt["image_shape"]))
    load_state_into(model, ckpt["model"], run_dir)
    return model.to(dev).eval(), cfg


def load_into(run_dir: str | os.PathLike[str] | RunDir, model: torch.nn.Module,
              device: str | torch.device | None = None) -> torch.nn.Module:
    """Load the run's latest checkpoint (verified, ``weights_only``) into ``model``, built as it was for training;
    eval mode, on ``device`` (default: where the model's parameters are). Returns ``model``. Another architecture
    (missing or unexpected names, other shapes) is refused in one line."""
    dev = torch.device(device) if device is not None else next(
        (p.device for p in model.parameters()), torch.device("cpu"))
    ckpt = load_checkpoint(run_dir, map_location=dev)
    load_state_into(model, ckpt["model"], run_dir)
    return model.to(dev).eval()
