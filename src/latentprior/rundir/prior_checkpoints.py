"""``RUN_DIR/priors/<name>/checkpoints/``: the checkpoint of a prior fitted into a finished run after training.

    priors/<name>/checkpoints/step_NNNNNNNN.pt      torch.save of the payload below; N is the run's step it was
    priors/<name>/checkpoints/step_NNNNNNNN.sha256  fitted on; digest and index as a run's (rundir/checkpoints.py)
    priors/<name>/checkpoints/latest.json

The payload describes itself: the prior's config (an :class:`~latentprior.config.ExPostPriorConfig`), the latent
dimension and image shape it is built for, its state dict, what the fit did (seconds, per-epoch losses, the latents
it read) and which checkpoint of the run it was fitted on (file, SHA-256, step), so that a prior is never used with
an autoencoder that has since trained on. It is written and read as a run's checkpoint is: digest first, SHA-256
verified before unpickling, ``weights_only=True``, then checked field by field against :data:`PRIOR_SCHEMA`.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import torch

import latentprior
from latentprior.config import ConfigError, ExPostPriorConfig, expost_config_from_dict
from latentprior.config.typed import to_dict
from latentprior.rundir.checkpoints import SCHEMA, CheckpointError, check_fields, read_verified, write_verified
from latentprior.rundir.layout import RunDir, run_dir_of

__all__ = ["PRIOR_FORMAT", "PRIOR_SCHEMA", "save_prior_checkpoint", "load_prior_checkpoint", "check_prior_payload"]

PRIOR_FORMAT = "latentprior-prior-checkpoint/1"


def _is_int(v: Any, low: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _seconds(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0


def _fit(v: Any) -> bool:
    return (isinstance(v, dict) and _seconds(v.get("seconds")) and isinstance(v.get("history"), list)
            and all(isinstance(h, int | float) for h in v["history"]) and _is_int(v.get("n_latents"), 1))


def _autoencoder(v: Any) -> bool:
    return (isinstance(v, dict) and isinstance(v.get("file"), str) and isinstance(v.get("sha256"), str)
            and _is_int(v.get("step")))


# field -> (check, what it must be); every field is required
PRIOR_SCHEMA: dict[str, tuple[Any, str]] = {
    "config": (lambda v: isinstance(v, dict), "the prior's config as a mapping"),
    "step": (_is_int, "an integer >= 0 (the run's step it was fitted on)"),
    "latent_dim": (lambda v: _is_int(v, 1), "an integer >= 1"),
    "image_shape": (lambda v: isinstance(v, list | tuple) and len(v) == 3 and all(_is_int(s, 1) for s in v),
                    "[C, H, W] of positive integers"),
    "state": SCHEMA["model"][1:],  # a run's model state: names -> tensors, every value finite
    "fit": (_fit, "a mapping with seconds >= 0, a list of per-epoch losses and n_latents >= 1"),
    "autoencoder": (_autoencoder, "the run checkpoint it was fitted on: {file, sha256, step}"),
}


def save_prior_checkpoint(prior_dir: str | os.PathLike[str] | RunDir, cfg: ExPostPriorConfig, *,
                          state: dict[str, torch.Tensor], latent_dim: int, image_shape: tuple[int, int, int],
                          fit: dict[str, Any], autoencoder: dict[str, Any]) -> None:
    """Write the prior's checkpoint into ``RUN_DIR/priors/<name>/`` (``prior_dir``, a :meth:`RunDir.prior`).

    ``autoencoder`` is the run's checkpoint index entry (``file``, ``sha256``, ``step``) the latents came from.
    """
    payload = {"format": PRIOR_FORMAT, "library_version": latentprior.__version__,
               "torch_version": str(torch.__version__), "saved_at": time.time(), "config": to_dict(cfg),
               "step": int(autoencoder["step"]), "latent_dim": int(latent_dim), "image_shape": list(image_shape),
               "state": {k: v.detach().cpu() for k, v in state.items()}, "fit": dict(fit),
               "autoencoder": {k: autoencoder[k] for k in ("file", "sha256", "step")}}
    write_verified(run_dir_of(prior_dir), payload["step"], payload)


def check_prior_payload(payload: Any, path: Any) -> dict[str, Any]:
    """``payload`` if it is a prior checkpoint whose every field has the type :data:`PRIOR_SCHEMA` states, else a
    one-line :class:`CheckpointError`; the config is returned as an :class:`ExPostPriorConfig`."""
    if not isinstance(payload, dict) or payload.get("format") != PRIOR_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path} is not a {PRIOR_FORMAT} file (format={found!r})")
    check_fields(payload, ((n, True, *rule) for n, rule in PRIOR_SCHEMA.items()), path, "latentprior train-prior")
    try:
        cfg = expost_config_from_dict(payload["config"])
    except ConfigError as e:
        raise CheckpointError(f"{path}: its prior config is invalid: {e}") from e
    return {**payload, "config": cfg, "image_shape": [int(s) for s in payload["image_shape"]]}


def load_prior_checkpoint(prior_dir: str | os.PathLike[str] | RunDir,
                          map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The verified, schema-checked checkpoint of the prior in ``prior_dir`` (config as an ExPostPriorConfig)."""
    rd = run_dir_of(prior_dir)
    if not rd.checkpoint_index.is_file():
        raise CheckpointError(f"no prior fitted in {rd.path} (expected its checkpoint index); fit one with "
                              "`latentprior train-prior RUN --prior KIND`")
    payload, path, index = read_verified(rd, map_location)
    payload = check_prior_payload(payload, path)
    if payload["step"] != index["step"]:
        raise CheckpointError(f"{path} holds step {payload['step']} but its index says {index['step']}; the "
                              "checkpoint or its index was edited")
    return payload
