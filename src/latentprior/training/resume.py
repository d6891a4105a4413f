"""Continuing a run from its checkpoint: the states that must fit the rebuilt run before the first step, the
learning rates a resume may change, and the record of what changed.

:func:`~latentprior.rundir.checkpoints.check_payload` has already checked every field's type; what it cannot
know is whether the states fit *this* run's parameters. A state that does not fit must be refused here, in one
line, and not at the first optimizer step (Adam would fail in the middle of training on an ``exp_avg`` of
another shape, or silently train with a NaN step count).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from latentprior.config import Config
from latentprior.objectives import Objective
from latentprior.rundir import append_config_history
from latentprior.rundir.checkpoints import CheckpointError, resume_changes
from latentprior.training import distributed

__all__ = ["load_optimizer_states", "load_scaler_state", "rng_state", "restore_rng", "record_changes"]


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _check_fit(name: str, opt: torch.optim.Optimizer, where: object) -> None:
    """Every moment of ``opt`` has its parameter's shape, and every step count is one finite number >= 0."""
    for i, p in enumerate(p for g in opt.param_groups for p in g["params"]):
        for key, value in opt.state.get(p, {}).items():
            bad = None
            if key == "step":
                number = value.item() if isinstance(value, torch.Tensor) and value.numel() == 1 else value
                if not (isinstance(number, int | float) and math.isfinite(number) and number >= 0):
                    bad = f"step count {value!r}"
            elif not isinstance(value, torch.Tensor) or value.shape != p.shape:
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                bad = f"'{key}' of shape {shape} for a parameter of shape {tuple(p.shape)}"
            if bad:
                raise CheckpointError(f"{where}: the checkpoint's {name} optimizer state does not fit this run "
                                      f"(parameter {i}: {bad}); the checkpoint is damaged or belongs to another model")


def load_optimizer_states(objective: Objective, saved: dict[str, Any], lr_scale: float, where: object) -> None:
    """Load each update's Adam state, check it fits, and set the learning rates from the config.

    The saved param groups carry the learning rate of the run that saved them; the config's (times the
    schedule's ``lr_scale``) is the one to use, so that ``resume --set objective.lr=...`` takes effect. For a run
    resumed unchanged the two are equal.
    """
    try:
        objective.load_state_dict(saved)
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError, AttributeError) as e:
        raise CheckpointError(f"{where}: the checkpoint's optimizer states do not fit this run's updates "
                              f"({_first_line(e)})") from e
    for name, opt in objective.optimizers.items():
        _check_fit(name, opt, where)
    objective.set_lr_scale(lr_scale)


def load_scaler_state(scaler: torch.amp.GradScaler | None, saved: dict[str, Any] | None, where: object) -> None:
    """The fp16 gradient scaler's state (loss scale, growth counter), when the run has a scaler."""
    if scaler is None or saved is None:
        return
    try:
        scaler.load_state_dict(saved)
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"{where}: the checkpoint's gradient-scaler state cannot be used ({_first_line(e)})"
                              ) from e
    scale = scaler.get_scale()
    if not (math.isfinite(scale) and scale > 0):
        raise CheckpointError(f"{where}: the checkpoint's gradient-scaler scale is {scale}, not a finite number > 0")


def rng_state(device: torch.device, ctx: distributed.DistContext) -> dict[str, Any]:
    """This process's RNG states and, in a multi-process run, every process's (a collective)."""
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    if ctx.enabled:  # a collective: every process's noise state goes into rank 0's checkpoint
        state["ranks"] = distributed.gather_objects(dict(state))
    return state


def restore_rng(saved: dict[str, Any], device: torch.device, ctx: distributed.DistContext, seed: int,
                step: int, where: object) -> None:
    """Continue each process's noise where the checkpoint left it (or, from another number of processes,
    from fresh distinct seeds: valid, not bit-exact)."""
    ranks = saved.get("ranks")
    if ctx.enabled and (ranks is None or len(ranks) != ctx.world_size):
        torch.manual_seed(distributed.rank_seed(seed, ctx.rank, step))
        return
    own = ranks[ctx.rank] if ctx.enabled else saved
    try:
        torch.set_rng_state(own["torch"].cpu())
        if device.type == "cuda" and "cuda" in own:
            torch.cuda.set_rng_state(own["cuda"].cpu(), device)
    except (RuntimeError, TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: the checkpoint's RNG state cannot be restored ({_first_line(e)})") from e


def record_changes(run_dir: Path | None, saved: Config, cfg: Config, step: int) -> dict[str, tuple[Any, Any]]:
    """Append the keys ``cfg`` changes from the checkpoint's config (those a resume may change) to the run's
    ``config_history.jsonl``, at the step they apply from; returns them."""
    changes = resume_changes(saved, cfg)
    if changes and run_dir is not None:
        append_config_history(run_dir, step, {k: new for k, (_, new) in changes.items()},
                              {k: old for k, (old, _) in changes.items()})
    return changes
