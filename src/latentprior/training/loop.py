"""The training loop: read top to bottom, it is the whole algorithm.

joint phase (train.epochs):       every update of the objective (F, then f, [then g])
prior phase (train.prior_epochs): only the prior's (and discriminator's) updates on the frozen encoder

Resuming is exact: the batch order of every epoch is a pure function of (seed, epoch), and the
checkpoint carries the model, optimizer and RNG states, so an interrupted-and-resumed run on the CPU
produces the same losses as an uninterrupted one.
"""

from __future__ import annotations

import math
import resource
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from latentprior.config import Config, save_config
from latentprior.data import load_dataset
from latentprior.models import LatentAutoencoder, build_model
from latentprior.objectives import build_objective, run_updates
from latentprior.sampling.grid import save_image_grid
from latentprior.training.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint
from latentprior.training.metrics_log import MetricLogger

__all__ = ["train", "load_run", "resolve_device", "EpochSampler", "NonFiniteLossError", "RunBudget"]

# Keys that may change between the sessions of one run (budget and bookkeeping, not the model).
_MUTABLE_TRAIN_KEYS = {"epochs", "prior_epochs", "log_every", "checkpoint_every", "samples_every", "device",
                       "threads", "progress"}


class NonFiniteLossError(FloatingPointError):
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

    Drops the last incomplete batch, as BatchNorm and the paper's fixed batch size expect.
    """

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        if n < batch_size:
            raise ValueError(f"dataset has {n} images, fewer than one batch of {batch_size}")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.steps_per_epoch = n // batch_size
        self._epoch, self._perm = -1, None

    def indices(self, step: int) -> torch.Tensor:
        epoch, i = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=g)
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


def _rng_state(device: torch.device) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


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
    run_dir.mkdir(parents=True, exist_ok=True)
    tc = cfg.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = resolve_device(tc.device)
    torch.manual_seed(tc.seed)

    data = load_dataset(cfg.data.name, "train", cfg.data.dir, verify=cfg.data.verify,
                        download=cfg.data.download).to(device)
    model = build_model(cfg, data.image_shape).to(device)
    objective = build_objective(cfg, model)
    sampler = EpochSampler(len(data), tc.batch_size, tc.seed)
    budget = RunBudget(cfg, sampler.steps_per_epoch)

    step = 0
    if latest_checkpoint(run_dir) is not None:
        ckpt = load_checkpoint(run_dir, map_location=device)
        _check_compatible(ckpt["config"], cfg)
        model.load_state_dict(ckpt["model"])
        objective.load_state_dict(ckpt["optimizers"])
        torch.set_rng_state(ckpt["rng"]["torch"].cpu())
        if device.type == "cuda" and "cuda" in ckpt["rng"]:
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"].cpu(), device)
        step = ckpt["step"]
    save_config(cfg, run_dir / "config.yaml")

    end = budget.total_steps if max_steps is None else min(budget.total_steps, max_steps)
    logger = MetricLogger(run_dir, resume_step=step)
    # On the CPU a per-step finiteness check costs nothing; on a GPU it would sync, so check at log steps.
    check_every = 1 if device.type == "cpu" else tc.log_every
    sums: dict[str, torch.Tensor] = {}
    count, t_log, images_since = 0, time.perf_counter(), 0
    last: dict[str, Any] = {}
    t_start, start_step = time.perf_counter(), step

    def checkpoint(at: int) -> None:
        save_checkpoint(run_dir, cfg, at, {"model": model.state_dict(), "optimizers": objective.state_dict(),
                                           "rng": _rng_state(device), "image_shape": list(data.image_shape),
                                           "metrics": last})

    bar = tqdm(total=end, initial=step, desc=f"train {run_dir.name}", disable=not tc.progress, dynamic_ncols=True)
    try:
        while step < end:
            phase = budget.phase(step)
            epoch = step / sampler.steps_per_epoch
            if tc.lr_halve_every:
                objective.set_lr_scale(0.5 ** math.floor(epoch / tc.lr_halve_every))
            model.train()
            x = data.batch(sampler.indices(step).to(device))  # (B, C, H, W) in [0, 1]
            metrics = run_updates(objective, x, phase)
            step += 1
            images_since += x.shape[0]
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1

            if step % check_every == 0 or step % tc.checkpoint_every == 0 or step == end:
                bad = [k for k, v in metrics.items() if k.endswith("/loss") and not torch.isfinite(v).item()]
                if bad:
                    raise NonFiniteLossError(
                        f"non-finite loss {bad} at step {step} (epoch {epoch:.2f}, phase {phase}); the run stopped "
                        f"and {run_dir / 'checkpoints'} keeps the last good state — lower the learning rate or "
                        f"check the data, then `latentprior resume {run_dir}`"
                    )
            if step % tc.log_every == 0 or step == end:
                dt = time.perf_counter() - t_log
                last = {k: float(v / count) for k, v in sums.items()}  # the host sync of the loop
                if not all(math.isfinite(v) for k, v in last.items() if k.endswith("/loss")):
                    raise NonFiniteLossError(f"non-finite loss in the steps before {step}; last good checkpoint kept")
                last.update(epoch=step / sampler.steps_per_epoch, phase=phase,
                            images_per_s=images_since / max(dt, 1e-9))
                logger.log(step, last)
                bar.set_postfix({k.split("/")[0][:2] + "/" + k.split("/")[-1]: f"{v:.4g}" for k, v in last.items()
                                 if k.endswith("loss")})
                sums, count, t_log, images_since = {}, 0, time.perf_counter(), 0
            if tc.samples_every and step % tc.samples_every == 0:
                save_image_grid(model.sample(64, generator=torch.Generator(device).manual_seed(0)),
                                run_dir / "samples" / f"step_{step:08d}.png")
            if step % tc.checkpoint_every == 0 or step == end:
                checkpoint(step)
            bar.update(1)
    finally:
        bar.close()
        logger.close()

    if step == budget.total_steps or max_steps is None:
        save_image_grid(model.sample(100, generator=torch.Generator(device).manual_seed(0)),
                        run_dir / "samples" / "samples.png", nrow=10)
    wall = time.perf_counter() - t_start
    return {"step": step, "total_steps": budget.total_steps, "steps_this_session": step - start_step,
            "wall_s": wall, "images_per_s": (step - start_step) * tc.batch_size / max(wall, 1e-9),
            "peak_memory_mb": _peak_memory_mb(device), "metrics": last, "run_dir": str(run_dir),
            "device": str(device)}
