"""A run: everything one training process needs, built or resumed from its directory, and its one step.

joint phase (train.epochs):       every update of the objective (F, then f, [then g])
prior phase (train.prior_epochs): only the prior's (and discriminator's) updates on the frozen encoder

Resuming is exact: the batch order of every epoch is a pure function of (seed, epoch), and
:meth:`Run.checkpoint_state` carries the model, optimizer, gradient-scaler and RNG states, so an
interrupted-and-resumed run on the CPU produces the same losses as an uninterrupted one.

Under ``torchrun`` (a process group initialised by ``cli.main``) each process trains on its shard of the
same global batch and gradients are averaged per update (training/distributed.py); rank 0 alone writes.
Speed options (autocast, channels_last, compile, Adam's implementation, CUDA graphs) are chosen by
training/performance.py; a captured step is replayed by training/cuda_graphs.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from latentprior.atomic import writing
from latentprior.config import Config, ConfigError
from latentprior.data import load_split
from latentprior.data.dataset import ImageDataset
from latentprior.models import LatentAutoencoder, build_model
from latentprior.models.checks import check_model, has_user_modules
from latentprior.models.load import load_state_into
from latentprior.objectives import Objective, Phase, build_objective, objective_class, run_updates
from latentprior.rundir import RunDir, write_run_config
from latentprior.rundir.checkpoints import (
    CheckpointError,
    check_resumable,
    clean_partial_files,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from latentprior.training import distributed
from latentprior.training.cuda_graphs import GraphedStep
from latentprior.training.device import resolve_device
from latentprior.training.memory import check_memory
from latentprior.training.performance import (
    adam_impl,
    prepare_batch,
    prepare_model,
    step_options,
    use_cuda_graphs,
)
from latentprior.training.resume import (
    load_optimizer_states,
    load_scaler_state,
    record_changes,
    restore_rng,
    rng_state,
)

__all__ = ["Run", "open_run", "EpochSampler", "RunBudget", "set_phase_mode"]


class EpochSampler:
    """Batch indices for any global step: epoch e uses randperm(N) from a generator seeded by (seed, e).

    Drops the last incomplete batch, as BatchNorm and the paper's fixed batch size expect. The permutation is
    drawn on the CPU (the same on every machine and process) and moved to ``device`` once per epoch, so a
    step's indices need no host-to-device copy.
    """

    def __init__(self, n: int, batch_size: int, seed: int, device: torch.device | str | None = None) -> None:
        if n < batch_size:
            raise ConfigError(f"train.batch_size {batch_size} is larger than the dataset's {n} images")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.steps_per_epoch = n // batch_size
        self._epoch, self._perm = -1, None

    def indices(self, step: int) -> Tensor:
        epoch, i = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=g).to(self.device)
        return self._perm[i * self.batch_size:(i + 1) * self.batch_size]


class RunBudget:
    """Step counts of the two phases for a config and a dataset size."""

    MAX_STEPS = 10**12  # ~30 years at 1,000 steps/s: a larger budget is a typo, and 1e308 epochs overflow

    def __init__(self, cfg: Config, steps_per_epoch: int) -> None:
        self.steps_per_epoch = steps_per_epoch
        self.joint_steps = self._steps(cfg.train.epochs, "train.epochs")
        self.total_steps = self.joint_steps + self._steps(cfg.train.prior_epochs, "train.prior_epochs")

    def _steps(self, epochs: float, key: str) -> int:
        steps = epochs * self.steps_per_epoch
        if not steps <= self.MAX_STEPS:  # also inf
            raise ConfigError(f"{key} = {epochs:g} is {steps:.3g} steps of {self.steps_per_epoch} per epoch, more "
                              f"than {self.MAX_STEPS:.0e}; set a budget a run can reach")
        return int(round(steps))

    def phase(self, step: int) -> Phase:
        return "joint" if step < self.joint_steps else "prior"


def set_phase_mode(model: LatentAutoencoder, phase: Phase) -> None:
    """The modules' train/eval mode for a step of ``phase``: all train, except the encoder of the prior phase.

    The paper's prior-only epochs fit the prior to a frozen encoder: eval mode keeps its BatchNorm on its
    running statistics (and leaves them unchanged), so the codes the prior sees are those the encoder now gives.
    """
    model.train()
    if phase == "prior":
        model.encoder.eval()


@dataclass
class Run:
    """One training process's state. ``steps_done`` is the global step: steps taken since the run began."""

    cfg: Config
    run_dir: Path | None
    ctx: distributed.DistContext
    device: torch.device
    data: ImageDataset
    model: LatentAutoencoder
    objective: Objective
    sampler: EpochSampler
    budget: RunBudget
    steps_done: int = 0
    # seconds the training loop spent on the steps taken so far, summed over sessions: a resumed run's cost is
    # the whole budget's, not its last session's (steps redone after a crash count once, as they are kept once)
    train_seconds: float = 0.0
    graphed: GraphedStep | None = None  # train.cuda_graphs: the updates replayed from CUDA graphs
    data_sha1: str | None = None  # images passed from Python (data.name: custom): a resume must be given the same

    @property
    def phase(self) -> Phase:
        """The phase of the next step."""
        return self.budget.phase(self.steps_done)

    def step(self) -> dict[str, Tensor]:
        """Take the next step: this process's shard of the global batch, every update, BatchNorm statistics.

        Returns the detached metrics of the updates (no host sync).
        """
        tc, ctx, i = self.cfg.train, self.ctx, self.steps_done
        phase = self.budget.phase(i)
        if tc.lr_halve_every:
            self.objective.set_lr_scale(self.lr_scale(i))
        set_phase_mode(self.model, phase)
        shard = tc.batch_size // ctx.world_size
        idx = self.sampler.indices(i)  # (B,) the global batch, the same on every process
        idx = idx[ctx.rank * shard:(ctx.rank + 1) * shard]  # this process's shard (all of it for one process)
        x = prepare_batch(self.data.batch(idx), tc)  # (B / world, C, H, W) in [0, 1]
        metrics = run_updates(self.objective, x, phase) if self.graphed is None else self.graphed(x, phase)
        if ctx.enabled and not tc.sync_bn:
            distributed.average_batchnorm_buffers(self.model)
        self.steps_done += 1
        return metrics

    def lr_scale(self, step: int) -> float:
        """The learning rates' factor at ``step``: 1/2 per ``train.lr_halve_every`` epochs (1 without halving)."""
        every = self.cfg.train.lr_halve_every
        if not every:
            return 1.0
        halvings = step / self.sampler.steps_per_epoch / every
        return 0.5 ** min(math.floor(halvings), 2000) if math.isfinite(halvings) else 0.0  # 0.5**2000 == 0.0

    def checkpoint_state(self) -> dict[str, Any]:
        """Everything :meth:`restore` needs to continue exactly. A collective: call it on every process."""
        state = {"model": self.model.state_dict(), "optimizers": self.objective.state_dict(),
                 "rng": rng_state(self.device, self.ctx), "image_shape": list(self.data.image_shape),
                 "train_seconds": float(self.train_seconds)}
        scaler = self.objective.step_options.scaler
        if scaler is not None:  # fp16: the loss scale and its growth counter decide which steps are skipped
            state["scaler"] = scaler.state_dict()
        if self.data_sha1 is not None:
            state["data_sha1"] = self.data_sha1
        return state

    def restore(self, ckpt: dict[str, Any]) -> None:
        """Continue from a loaded checkpoint of this run (refused if its config changes what is trained, or if
        its states do not fit this run's modules and optimizers). The keys a resume may change and does (a
        learning rate, the budget) are recorded in the run's config history."""
        check_resumable(ckpt["config"], self.cfg)
        where = self.run_dir if self.run_dir is not None else "checkpoint"
        if self.data_sha1 is not None and ckpt.get("data_sha1", self.data_sha1) != self.data_sha1:
            raise CheckpointError(f"{where} trained on other images (sha1 {ckpt['data_sha1'][:12]}, these are "
                                  f"{self.data_sha1[:12]}); pass the same images to continue it, or use a new run "
                                  "directory")
        load_state_into(self.model, ckpt["model"], where)
        self.steps_done = ckpt["step"]
        load_optimizer_states(self.objective, ckpt["optimizers"], self.lr_scale(self.steps_done), where)
        load_scaler_state(self.objective.step_options.scaler, ckpt.get("scaler"), where)
        self.train_seconds = float(ckpt.get("train_seconds", 0.0))  # absent from checkpoints that predate it
        restore_rng(ckpt["rng"], self.device, self.ctx, self.cfg.train.seed, self.steps_done, where)
        record_changes(self.run_dir if self.ctx.is_main else None, ckpt["config"], self.cfg, self.steps_done)

    def save_checkpoint(self, metrics: dict[str, Any]) -> None:
        """Checkpoint the current step with the last logged ``metrics``; every process takes part, rank 0 writes."""
        state = self.checkpoint_state()
        if self.ctx.is_main and self.run_dir is not None:
            save_checkpoint(self.run_dir, self.cfg, self.steps_done, {**state, "metrics": metrics},
                            budget={"total_steps": self.budget.total_steps,
                                    "steps_per_epoch": self.budget.steps_per_epoch})


def open_run(cfg: Config, run_dir: str | Path | None, *, data: ImageDataset | None = None,
             model: LatentAutoencoder | None = None) -> Run:
    """Build the run of ``cfg``, or resume it from the latest checkpoint in ``run_dir``.

    ``run_dir`` None: a run that neither resumes nor writes (benchmarks, tests). ``data``: the training images
    to use instead of loading ``cfg.data`` (your own images, or random images of the same shape for speed
    measurements). ``model``: the model to train instead of building ``cfg``'s (your own modules; ``cfg`` then
    describes it, :func:`latentprior.models.describe.describe_model`); a resume loads the checkpoint into it.
    A resumed run keeps the speed options it was created with that change the rounding (``TrainConfig.kept_from``:
    Adam's implementation, the memory format), so it continues exactly; its config.yaml then says so.
    """
    cfg, ctx = _absolute_paths(cfg), distributed.current()  # one process, unless torchrun started this one
    run_dir = None if run_dir is None else Path(run_dir)
    if run_dir is not None and ctx.is_main:
        with writing(run_dir):
            run_dir.mkdir(parents=True, exist_ok=True)
        clean_partial_files(run_dir)  # the caller holds the run's lock (train()): no live writer owns them
    device = _device(cfg.train, ctx)
    ckpt = None
    if run_dir is not None and latest_checkpoint(run_dir) is not None:
        ckpt = load_checkpoint(run_dir, map_location=device, resumable=True)
        cfg = dataclasses.replace(cfg, train=cfg.train.kept_from(ckpt["config"].train))
    tc = cfg.train
    torch.manual_seed(tc.seed)
    data = load_split(cfg.data, "train") if data is None else data
    data_sha1 = _sha1(data.images) if cfg.data.name == "custom" else None  # what a resume must be given again
    if model is None:  # a model given from Python already exists; one built from cfg is estimated first (meta device)
        check_memory(cfg, data.image_shape, len(data), device)
    data = data.to(device)
    model = _model(cfg, data.image_shape, model, device, ctx)
    objective, graphed = _objective(cfg, model, device, ctx)
    sampler = EpochSampler(len(data), tc.batch_size, tc.seed, device=device)
    run = Run(cfg, run_dir, ctx, device, data, model, objective, sampler, RunBudget(cfg, sampler.steps_per_epoch),
              graphed=graphed, data_sha1=data_sha1)
    if ckpt is not None:
        run.restore(ckpt)
    elif ctx.enabled:
        torch.manual_seed(distributed.rank_seed(tc.seed, ctx.rank))  # the shards draw independent noise
    prepare_model(model, tc)
    if run_dir is not None and ctx.is_main:
        write_run_config(RunDir(run_dir), cfg)
    return run


def _absolute_paths(cfg: Config) -> Config:
    """``data.path`` made absolute, so that the recorded config finds the folder from anywhere."""
    if cfg.data.path is None or Path(cfg.data.path).is_absolute():
        return cfg
    return cfg.replace(**{"data.path": str(Path(cfg.data.path).expanduser().resolve())})


def _device(tc, ctx: distributed.DistContext) -> torch.device:
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = resolve_device(tc.device)
    if ctx.enabled and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", ctx.local_rank)
    if tc.batch_size % ctx.world_size:
        raise ConfigError(f"train.batch_size {tc.batch_size} (the global batch) must be divisible by the "
                          f"{ctx.world_size} processes")
    return device


def _model(cfg: Config, image_shape: tuple[int, int, int], model: LatentAutoencoder | None, device: torch.device,
           ctx: distributed.DistContext) -> LatentAutoencoder:
    """The config's model (or the one given) on ``device``, checked against the run, replicated across processes."""
    model = (build_model(cfg, image_shape) if model is None else model).to(device)
    check_model(model, cfg, image_shape, probe=has_user_modules(cfg))
    if ctx.enabled:
        if cfg.train.sync_bn:
            model = distributed.convert_global_batchnorm(model)
        distributed.broadcast_state(model)  # identical replicas from the start, whatever the init did
    return model


def _objective(cfg: Config, model: LatentAutoencoder, device: torch.device,
               ctx: distributed.DistContext) -> tuple[Objective, GraphedStep | None]:
    """The config's objective with the speed options of ``train:`` (Adam's implementation, precision), and the
    step captured as CUDA graphs when ``train.cuda_graphs`` asks for it."""
    tc = cfg.train
    blocker = objective_class(cfg).graph_blocker(cfg.objective)
    if blocker is None and tc.cuda_graphs == "auto" and has_user_modules(cfg):
        # code from outside the library may sync with the host or branch on data, which a captured graph cannot
        # replay: auto stays eager for it, and train.cuda_graphs on is the user's statement that it is capturable
        blocker = "the model holds modules from outside latentprior"
    graphs = use_cuda_graphs(tc, device, ctx.enabled, blocker)
    objective = build_objective(cfg, model, adam_impl=adam_impl(tc, device, graphs), step_options=step_options(
        tc, device, distributed.all_reduce_gradients if ctx.enabled else None, graphs=graphs))
    return objective, GraphedStep(objective) if graphs else None


def _sha1(images: Tensor) -> str:
    return hashlib.sha1(images.detach().cpu().contiguous().numpy().tobytes(), usedforsecurity=False).hexdigest()
