"""Objectives as data: an ordered list of updates, each with its loss, parameter group and optimizer.

The training loop is the same for every arrangement::

    for u in objective.updates(x, phase):        # the order here is the algorithm
        u.optimizer.zero_grad(set_to_none=True)
        u.loss.backward(inputs=u.params)          # gradients land only in u's group
        u.optimizer.step()

``updates`` is a generator: each loss is built after the previous update has stepped, yet every update
reads the codes computed at the start of the step (z is encoded once, before the autoencoder's step, and
reused detached; prior samples are drawn once), and no loss depends on a group stepped before it in the
step. Every gradient is therefore taken at the parameters of the step's start: the paper's simultaneous
gradient ascent on F, f (and g), not an alternating (Gauss-Seidel) one.

Train/eval mode is not set here: the run sets it per phase (training/run.py, ``set_phase_mode``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from latentprior.config import ObjectiveConfig
from latentprior.models.autoencoder import LatentAutoencoder
from latentprior.objectives.optim import AdamImpl, build_optimizer, keep_impl

__all__ = ["Update", "Objective", "Phase", "StepOptions", "run_updates"]

Phase = Literal["joint", "prior"]


@dataclass
class Update:
    """One gradient step: minimise ``loss`` w.r.t. ``params`` with ``optimizer``.

    ``metrics`` holds detached scalars for logging; reading them forces no host sync until logged.
    """

    name: str
    loss: Tensor
    params: list[nn.Parameter]
    optimizer: torch.optim.Optimizer
    metrics: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class StepOptions:
    """How :func:`run_updates` executes the updates, never what they are (see training/performance.py).

    ``autocast``: the dtype the forward passes autocast to on ``device_type`` (None: full precision).
    ``scaler``: a GradScaler for fp16, stepping every optimizer of the step and updated once after them.
    ``reduce_gradients``: called on each update's parameters between its backward and its optimizer step; in
    multi-process training it averages the gradients over processes (training/distributed.py).
    """

    autocast: torch.dtype | None = None
    device_type: str = "cpu"
    autocast_cache: bool = True  # off under CUDA graph capture: a cast weight must not outlive the captured region
    scaler: torch.amp.GradScaler | None = None
    reduce_gradients: Callable[[list[nn.Parameter]], None] | None = None


class Objective:
    """Base: holds the model and one Adam optimizer per non-empty parameter group, at ``base_lr[group]`` with
    ``betas[group]``.

    Subclasses implement :meth:`updates`; ``groups`` maps each update's name to its parameters, in update
    order, and a subclass with a group of its own declares it with :meth:`add_group`. The prior-only phase (the
    paper's extra epochs on a frozen encoder) yields no autoencoder update.

    ``adam_impl`` and ``step_options`` say how the updates are executed: constructed, an objective runs the
    per-parameter Adam loop in plain fp32 in one process; :func:`~latentprior.objectives.build_objective` then
    :meth:`configure`-s it with the run's choice (training/performance.py).
    """

    # Why a replayed CUDA graph of the step would compute something else (host-side state that changes per
    # step), or None; training/performance.py's use_cuda_graphs refuses capture when set. Read from the config
    # alone: the run decides on capture, and so on Adam's flags, before it builds the objective.
    @classmethod
    def graph_blocker(cls, cfg: ObjectiveConfig) -> str | None:
        return None

    def __init__(self, model: LatentAutoencoder, cfg: ObjectiveConfig) -> None:
        self.model = model
        self.cfg = cfg
        self.adam_impl = AdamImpl()
        self.step_options = StepOptions()
        self.groups: dict[str, list[nn.Parameter]] = {}
        self.base_lr: dict[str, float] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self._betas: dict[str, tuple[float, float]] = {}
        betas = (cfg.adam_beta1, cfg.adam_beta2)
        # a discriminator may be trained with its own betas (objective.disc_adam_beta1/2)
        for name, params, lr, group_betas in (
                ("autoencoder", model.autoencoder_parameters(), cfg.lr, betas),
                ("prior", model.prior_parameters(), cfg.prior_lr or cfg.lr, betas),
                ("discriminator", model.discriminator_parameters(), cfg.disc_lr or cfg.lr, cfg.disc_betas)):
            self.add_group(name, params, lr, group_betas)

    def add_group(self, name: str, params: list[nn.Parameter], lr: float, betas: tuple[float, float]) -> None:
        """Declare the parameter group ``name``, stepped by its own Adam at ``lr`` (the base of
        :meth:`set_lr_scale`) with ``betas``, built by :func:`~latentprior.objectives.optim.build_optimizer`.
        An empty group is recorded in ``groups`` but gets no optimizer (:meth:`has` is then False)."""
        self.groups[name] = params
        if params:
            self.base_lr[name], self._betas[name] = lr, betas
            self.optimizers[name] = build_optimizer(params, lr, betas, self.adam_impl)

    def configure(self, adam_impl: AdamImpl, step_options: StepOptions) -> None:
        """Execute the updates with Adam's implementation ``adam_impl`` and ``step_options`` (precision, gradient
        scaling, gradient averaging): how they are computed, never what they are. Rebuilds every group's Adam,
        so call it before the first step: optimizer state (moments, step counts) is not carried over."""
        self.adam_impl, self.step_options = adam_impl, step_options
        self.optimizers = {k: build_optimizer(self.groups[k], self.base_lr[k], self._betas[k], adam_impl)
                           for k in self.optimizers}

    def update(self, group: str, loss: Tensor, **metrics: Tensor) -> Update:
        return Update(group, loss, self.groups[group], self.optimizers[group],
                      {k: v.detach() for k, v in metrics.items()})

    def has(self, group: str) -> bool:
        return group in self.optimizers

    def set_lr_scale(self, scale: float) -> None:
        """Scale every optimizer's learning rate relative to its configured value (for step schedules)."""
        for k, opt in self.optimizers.items():
            for pg in opt.param_groups:
                pg["lr"] = self.base_lr[k] * scale

    def state_dict(self) -> dict[str, dict]:
        return {k: opt.state_dict() for k, opt in self.optimizers.items()}

    def load_state_dict(self, state: dict[str, dict]) -> None:
        missing = sorted(set(self.optimizers) - set(state))
        if missing:
            raise KeyError(f"checkpoint has no optimizer state for update group(s) {missing}")
        for k, opt in self.optimizers.items():
            opt.load_state_dict(state[k])
            keep_impl(opt, self.adam_impl)

    def updates(self, x: Tensor, phase: Phase = "joint") -> Iterator[Update]:
        """Yield this step's updates in order. x: (B, C, H, W) in [0, 1]."""
        raise NotImplementedError


def run_updates(objective: Objective, x: Tensor, phase: Phase = "joint") -> dict[str, Tensor]:
    """The inner loop of training: apply every update of one step; returns the detached metrics.

    Executed as ``objective.step_options`` says (precision, gradient scaling, gradient averaging).
    """
    opts = objective.step_options
    metrics: dict[str, Tensor] = {}
    updates = objective.updates(x, phase)
    while True:
        # The generator builds each loss only when asked for it, so the autocast region is exactly the
        # forward passes: backward and the optimizer step run outside it, as torch.amp recommends.
        with _autocast(opts):
            u = next(updates, None)
        if u is None:
            break
        u.optimizer.zero_grad(set_to_none=True)
        (u.loss if opts.scaler is None else opts.scaler.scale(u.loss)).backward(inputs=u.params)
        if opts.reduce_gradients is not None:
            opts.reduce_gradients(u.params)  # before the step: every process steps with the same gradient
        if opts.scaler is None:
            u.optimizer.step()
        else:
            opts.scaler.step(u.optimizer)  # skipped (for every process alike) when the gradient overflowed
        metrics[f"{u.name}/loss"] = u.loss.detach()
        metrics.update({f"{u.name}/{k}": v for k, v in u.metrics.items()})
    if opts.scaler is not None:
        opts.scaler.update()
    return metrics


def _autocast(opts: StepOptions) -> contextlib.AbstractContextManager:
    if opts.autocast is None:
        return contextlib.nullcontext()
    return torch.autocast(opts.device_type, dtype=opts.autocast, cache_enabled=opts.autocast_cache)
