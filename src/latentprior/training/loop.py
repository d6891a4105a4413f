"""The training loop: read top to bottom, it is the whole algorithm.

joint phase (train.epochs):       every update of the objective (F, then f, [then g])
prior phase (train.prior_epochs): only the prior's (and discriminator's) updates on the frozen encoder

Resuming is exact: the batch order of every epoch is a pure function of (seed, epoch), and the
checkpoint carries the model, optimizer and RNG states, so an interrupted-and-resumed run on the CPU
produces the same losses as an uninterrupted one.

Under ``torchrun`` (a process group initialised by ``cli.main``) each process trains on its shard of the
same global batch and gradients are averaged per update (training/distributed.py); rank 0 alone writes.
Speed options (autocast, channels_last, compile) are applied by training/performance.py.
"""

from __future__ import annotations

import math
import resource
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from latentprior.config import Config, ConfigError, save_config
from latentprior.data import load_dataset
from latentprior.errors import UserError
from latentprior.models import LatentAutoencoder, build_model
from latentprior.objectives import build_objective, run_updates
from latentprior.sampling.grid import save_image_grid
from latentprior.training import distributed
from latentprior.training.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint
from latentprior.training.metrics_log import MetricLogger
from latentprior.training.performance import prepare_batch, prepare_model, step_options

__all__ = ["train", "load_run", "resolve_device", "EpochSampler", "NonFiniteLossError", "RunBudget"]

# Keys that may change between the sessions of one run (budget and bookkeeping, not the model).
_MUTABLE_TRAIN_KEYS = {"epochs", "prior_epochs", "log_every", "checkpoint_every", "samples_every", "device",
                       "threads", "progress", "compile", "channels_last"}


class NonFiniteLossError(FloatingPointError, UserError):
    """A loss became NaN or inf; the last checkpoint on disk is the last good state."""


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; anything else is passed to torch.device (validated)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"train.device '{name}' asked for CUDA but torch.cuda.is_available() is False")
    return dev


class EpochSampler:
    """Batch indices for any global step: epoch e uses randperm(N) from a generator seeded by (seed, e).

    Drops the last incomplete batch, as BatchNorm and the paper's fixed batch size expect. The permutation is
    drawn on the CPU (the same on every machine and process) and moved to ``device`` once per epoch, so a
    step's indices need no host-to-device copy.
    """

    def __init__(self, n: int, batch_size: int, seed: int, device: torch.device | str | None = None) -> None:
        if n < batch_size:
            raise ValueError(f"dataset has {n} images, fewer than one batch of {batch_size}")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.steps_per_epoch = n // batch_size
        self._epoch, self._perm = -1, None

    def indices(self, step: int) -> torch.Tensor:
        epoch, i = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=g).to(self.device)
        return self._perm[i * self.batch_size:(i + 1) * self.batch_size]


class RunBudget:
    """Step counts of the two phases for a config and a dataset size."""

    def __init__(self, cfg: Config, steps_per_epoch: int) -> None:
        self.steps_per_epoch = steps_per_epoch
        self.joint_steps = int(round(cfg.train.epochs * steps_per_epoch))
        self.total_steps = self.joint_steps + int(round(cfg.train.prior_epochs * steps_per_epoch))

    def phase(self, step: int) -> str:
        return "joint" if step < self.joint_steps else "prior"


def _check_compatible(saved: Config, cfg: Config) -> None:
    from latentprior.config import config_to_dict

    a, b = config_to_dict(saved), config_to_dict(cfg)
    for section in a:
        for key in a[section]:
            if section == "train" and key in _MUTABLE_TRAIN_KEYS:
                continue
            if section == "data" and key == "dir":
                continue
            if a[section][key] != b[section][key]:
                raise CheckpointError(
                    f"the run directory holds a run with {section}.{key}={a[section][key]!r}, but this config has "
                    f"{b[section][key]!r}; use a new --out directory, or `latentprior resume` to continue it as saved"
                )


def _rng_state(device: torch.device, ctx: distributed.DistContext) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    if ctx.enabled:  # a collective: every process's noise state goes into rank 0's checkpoint
        state["ranks"] = distributed.gather_objects(dict(state))
    return state


def _restore_rng(saved: dict[str, Any], device: torch.device, ctx: distributed.DistContext, seed: int,
                 step: int) -> None:
    ranks = saved.get("ranks")
    if ctx.enabled and (ranks is None or len(ranks) != ctx.world_size):
        # Saved by another number of processes: fresh, distinct noise per rank (not bit-exact, still valid).
        torch.manual_seed(distributed.rank_seed(seed, ctx.rank, step))
        return
    own = ranks[ctx.rank] if ctx.enabled else saved
    torch.set_rng_state(own["torch"].cpu())
    if device.type == "cuda" and "cuda" in own:
        torch.cuda.set_rng_state(own["cuda"].cpu(), device)


def _nonfinite_losses(metrics: dict[str, torch.Tensor], ctx: distributed.DistContext) -> list[str]:
    """The non-finite losses, in one host sync; in multi-process runs a NaN on any process is seen by all."""
    keys = [k for k in metrics if k.endswith("/loss")]
    values = torch.stack([metrics[k].float() for k in keys])
    if ctx.enabled:
        values = distributed.all_reduce_mean(values)
    return [k for k, v in zip(keys, values.tolist(), strict=True) if not math.isfinite(v)]


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def load_run(run_dir: str | Path, device: str | torch.device | None = None) -> tuple[LatentAutoencoder, Config]:
    """Rebuild a trained model from its run directory's latest checkpoint alone; eval mode."""
    run_dir = Path(run_dir)
    dev = resolve_device("auto") if device is None else torch.device(device)
    ckpt = load_checkpoint(run_dir, map_location=dev)
    cfg: Config = ckpt["config"]
    model = build_model(cfg, tuple(ckpt["image_shape"]))
    model.load_state_dict(ckpt["model"])
    return model.to(dev).eval(), cfg


def train(cfg: Config, run_dir: str | Path, *, max_steps: int | None = None) -> dict[str, Any]:
    """Train (or continue) the run in ``run_dir`` up to the config's budget or global step ``max_steps``.

    Returns a summary: steps done, images/s, peak memory (MiB), last logged metrics, wall time.
    """
    run_dir = Path(run_dir)
    tc = cfg.train
    ctx = distributed.current()  # one process, unless torchrun started this one (cli.main joins the group)
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = resolve_device(tc.device)
    if ctx.enabled and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", ctx.local_rank)
    if tc.batch_size % ctx.world_size:
        raise ConfigError(f"train.batch_size {tc.batch_size} (the global batch) must be divisible by the "
                          f"{ctx.world_size} processes")
    shard = tc.batch_size // ctx.world_size  # this process's share of every global batch
    torch.manual_seed(tc.seed)

    data = load_dataset(cfg.data.name, "train", cfg.data.dir, verify=cfg.data.verify,
                        download=cfg.data.download).to(device)
    model = build_model(cfg, data.image_shape).to(device)
    if ctx.enabled:
        if tc.sync_bn:
            model = distributed.convert_global_batchnorm(model)
        distributed.broadcast_state(model)  # identical replicas from the start, whatever the init did
    objective = build_objective(cfg, model)
    objective.step_options = step_options(tc, device, distributed.all_reduce_gradients if ctx.enabled else None)
    sampler = EpochSampler(len(data), tc.batch_size, tc.seed, device=device)
    budget = RunBudget(cfg, sampler.steps_per_epoch)

    step = 0
    if latest_checkpoint(run_dir) is not None:
        ckpt = load_checkpoint(run_dir, map_location=device)
        _check_compatible(ckpt["config"], cfg)
        model.load_state_dict(ckpt["model"])
        objective.load_state_dict(ckpt["optimizers"])
        step = ckpt["step"]
        _restore_rng(ckpt["rng"], device, ctx, tc.seed, step)
    elif ctx.enabled:
        torch.manual_seed(distributed.rank_seed(tc.seed, ctx.rank))  # the shards draw independent noise
    prepare_model(model, tc)
    if ctx.is_main:
        save_config(cfg, run_dir / "config.yaml")

    end = budget.total_steps if max_steps is None else min(budget.total_steps, max_steps)
    logger = MetricLogger(run_dir, resume_step=step) if ctx.is_main else None
    # On the CPU a per-step finiteness check costs nothing; on a GPU it would sync, so check at log steps.
    check_every = 1 if device.type == "cpu" else tc.log_every
    sums: dict[str, torch.Tensor] = {}
    count, t_log, images_since = 0, time.perf_counter(), 0
    last: dict[str, Any] = {}
    t_start, start_step = time.perf_counter(), step

    def checkpoint(at: int) -> None:
        rng = _rng_state(device, ctx)  # every process takes part; rank 0 writes
        if ctx.is_main:
            save_checkpoint(run_dir, cfg, at, {"model": model.state_dict(), "optimizers": objective.state_dict(),
                                               "rng": rng, "image_shape": list(data.image_shape), "metrics": last})

    bar = tqdm(total=end, initial=step, desc=f"train {run_dir.name}", disable=not (tc.progress and ctx.is_main),
               dynamic_ncols=True)
    try:
        while step < end:
            phase = budget.phase(step)
            epoch = step / sampler.steps_per_epoch
            if tc.lr_halve_every:
                objective.set_lr_scale(0.5 ** math.floor(epoch / tc.lr_halve_every))
            model.train()
            idx = sampler.indices(step)  # (B,) the global batch, the same on every process
            idx = idx[ctx.rank * shard:(ctx.rank + 1) * shard]  # this process's shard (all of it for one process)
            x = prepare_batch(data.batch(idx), tc)  # (B / world, C, H, W) in [0, 1]
            metrics = run_updates(objective, x, phase)
            if ctx.enabled and not tc.sync_bn:
                distributed.average_batchnorm_buffers(model)
            step += 1
            images_since += tc.batch_size
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1

            if step % check_every == 0 or step % tc.checkpoint_every == 0 or step == end:
                bad = _nonfinite_losses(metrics, ctx)
                if bad:
                    raise NonFiniteLossError(
                        f"non-finite loss {bad} at step {step} (epoch {epoch:.2f}, phase {phase}); the run stopped "
                        f"and {run_dir / 'checkpoints'} keeps the last good state — lower the learning rate or "
                        f"check the data, then `latentprior resume {run_dir}`"
                    )
            if step % tc.log_every == 0 or step == end:
                dt = time.perf_counter() - t_log
                keys = list(sums)
                values = torch.stack([sums[k].float() for k in keys]) / count
                if ctx.enabled:
                    values = distributed.all_reduce_mean(values)  # every shard's metrics: the global batch's
                last = dict(zip(keys, values.tolist(), strict=True))  # the host sync of the loop, one transfer
                if not all(math.isfinite(v) for k, v in last.items() if k.endswith("/loss")):
                    raise NonFiniteLossError(f"non-finite loss in the steps before {step}; last good checkpoint kept")
                last.update(epoch=step / sampler.steps_per_epoch, phase=phase,
                            images_per_s=images_since / max(dt, 1e-9))
                if logger is not None:
                    logger.log(step, last)
                bar.set_postfix({k.split("/")[0][:2] + "/" + k.split("/")[-1]: f"{v:.4g}" for k, v in last.items()
                                 if k.endswith("loss")})
                sums, count, t_log, images_since = {}, 0, time.perf_counter(), 0
            if ctx.is_main and tc.samples_every and step % tc.samples_every == 0:
                save_image_grid(model.sample(64, generator=torch.Generator(device).manual_seed(0)),
                                run_dir / "samples" / f"step_{step:08d}.png")
            if step % tc.checkpoint_every == 0 or step == end:
                checkpoint(step)
            bar.update(1)
    finally:
        bar.close()
        if logger is not None:
            logger.close()

    if ctx.is_main and (step == budget.total_steps or max_steps is None):
        save_image_grid(model.sample(100, generator=torch.Generator(device).manual_seed(0)),
                        run_dir / "samples" / "samples.png", nrow=10)
    wall = time.perf_counter() - t_start
    return {"step": step, "total_steps": budget.total_steps, "steps_this_session": step - start_step,
            "wall_s": wall, "images_per_s": (step - start_step) * tc.batch_size / max(wall, 1e-9),
            "peak_memory_mb": _peak_memory_mb(device), "metrics": last, "run_dir": str(run_dir),
            "device": str(device), "world_size": ctx.world_size}
