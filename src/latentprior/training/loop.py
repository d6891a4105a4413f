"""The training loop: open the run, step it, log windowed means, checkpoint; training/run.py holds the step.

The loop reads top to bottom: every step's losses are checked finite (per step on the CPU, where the check is
free; at log and checkpoint steps on a GPU, where it syncs), and the weights before a checkpoint or a preview
takes them, so a checkpoint never holds a diverged model.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import torch

from latentprior.atomic import WriteError
from latentprior.config import Config
from latentprior.data.dataset import ImageDataset
from latentprior.data.load import SIZES
from latentprior.interrupts import StopRequest, TrainingInterrupted, stop_after_step
from latentprior.models import LatentAutoencoder
from latentprior.progress_bar import progress_bar
from latentprior.rundir import RunDir, run_lock
from latentprior.rundir.checkpoints import check_resumable, latest_checkpoint, load_checkpoint, verify_checkpoint
from latentprior.sampling.grid import save_image_grid
from latentprior.training import distributed
from latentprior.training.device import peak_memory_mb
from latentprior.training.loggers import write_summaries
from latentprior.training.metrics_log import MetricLogger, MetricWindow, NonFiniteLossError, stop_advice
from latentprior.training.previews import RECON_PAIRS, preview_grids, preview_images, sample_images, save_previews
from latentprior.training.run import Run, RunBudget, open_run

__all__ = ["train"]


def train(cfg: Config, run_dir: str | Path, *, max_steps: int | None = None, data: ImageDataset | None = None,
          model: LatentAutoencoder | None = None) -> dict[str, Any]:
    """Train (or continue) the run in ``run_dir`` up to the config's budget or global step ``max_steps``.

    ``data``/``model``: your images and model instead of the config's (:func:`~latentprior.training.run.open_run`;
    :class:`latentprior.Trainer` passes them). Holds the run directory's lock throughout (rank 0, the one writer),
    so a second writer fails at once. SIGINT or SIGTERM (interrupts.py) finishes the current step, writes a
    verified checkpoint of it and raises :class:`~latentprior.interrupts.TrainingInterrupted`; a second signal
    stops at once.
    Returns a summary: steps done, images/s, peak memory (MiB), last logged metrics, wall time (this session's
    and, as ``train_s_total``, the run's over all sessions). A run already at or past where this session would
    stop is left exactly as it is: the summary then says why under ``nothing_to_do``.
    """
    with (run_lock(run_dir) if distributed.current().is_main else contextlib.nullcontext(),
          stop_after_step() as stop):
        try:
            return (_nothing_to_do(cfg, run_dir, max_steps)
                    or _train(open_run(cfg, run_dir, data=data, model=model), max_steps, stop))
        except WriteError as e:  # a full disk: say how to continue from what is kept
            raise e.advising(_continue_advice(run_dir)) from e.__cause__


def _continue_advice(run_dir: str | Path) -> str:
    if latest_checkpoint(run_dir) is not None:
        return f"then continue from the last checkpoint with `latentprior resume {run_dir}`"
    return "then run the command again (no checkpoint was written yet: the run starts over)"


def _stop_signal(stop: StopRequest, run: Run) -> int:
    """The signal every process agrees to stop on (0: go on); a collective in multi-process runs, so that all
    stop after the same step."""
    own = stop.signum or 0
    return distributed.all_reduce_max(own) if run.ctx.enabled else own


def _nothing_to_do(cfg: Config, run_dir: str | Path, max_steps: int | None) -> dict[str, Any] | None:
    """The summary of a run whose latest checkpoint is already at the end of ``cfg``'s budget or at/past
    ``max_steps``, read without opening the run (which would rewrite its config, previews and logs); else None."""
    index = latest_checkpoint(run_dir)
    if index is None:
        return None
    step, total = index["step"], _total_steps(cfg, index)
    if total is None:  # the budget cannot be told without opening the run
        return None
    if max_steps is not None and step >= max_steps < total:
        why = f"already at step {step}, at or past --max-steps {max_steps}"
    elif step >= total:
        why = f"already trained to step {step} of {total}, its whole budget"
    else:
        return None
    ckpt = load_checkpoint(run_dir)
    check_resumable(ckpt["config"], cfg)  # a config that changes the model is refused, with or without work to do
    return {"step": step, "total_steps": total, "steps_this_session": 0, "wall_s": 0.0,
            "train_s_total": float(ckpt.get("train_seconds", 0.0)), "images_per_s": 0.0,
            "metrics": ckpt.get("metrics", {}), "run_dir": str(run_dir), "nothing_to_do": why}


def _total_steps(cfg: Config, index: dict[str, Any]) -> int | None:
    """The budget's steps under ``cfg`` (which may add epochs to the saved run's): from the steps per epoch the
    checkpoint index records, else (older runs) from the training split's known size; None if neither tells."""
    per_epoch = index.get("steps_per_epoch")
    if not (isinstance(per_epoch, int) and per_epoch > 0):
        per_epoch = SIZES.get(cfg.data.name, {}).get("train", 0) // cfg.train.batch_size
    return RunBudget(cfg, per_epoch).total_steps if per_epoch > 0 else None


def _train(run: Run, max_steps: int | None, stop: StopRequest) -> dict[str, Any]:
    tc = run.cfg.train
    start, seconds_before = run.steps_done, run.train_seconds
    end = run.budget.total_steps if max_steps is None else min(run.budget.total_steps, max_steps)
    logger = MetricLogger(run.run_dir, resume_step=start, loggers=tc.loggers) if run.ctx.is_main else None
    window = MetricWindow(run.ctx, run.run_dir, start, lrs=run.objective.base_lr)
    last, t_start = {}, time.perf_counter()

    def trained() -> float:  # the run's training seconds over every session, this one up to now
        return seconds_before + time.perf_counter() - t_start

    check_every = 1 if run.device.type == "cpu" else tc.log_every  # a GPU would sync for every check
    bar = progress_bar(total=end, initial=start, desc=f"train {run.run_dir.name}", dynamic_ncols=True,
                       disable=not (tc.progress and run.ctx.is_main))
    try:
        while run.steps_done < end:
            phase = run.phase
            window.add(run.step(), tc.batch_size)
            step = run.steps_done
            save = step % tc.checkpoint_every == 0 or step == end
            if step % check_every == 0 or save:
                window.check(step, phase)
            if save or step % _images_every(tc) == 0 or (tc.samples_every and step % tc.samples_every == 0):
                _check_weights(run, step, phase)  # before a checkpoint or a preview takes them
            if step % tc.log_every == 0 or step == end:
                last = _log(run, window, logger, bar, phase)
            if run.ctx.is_main and tc.samples_every and step % tc.samples_every == 0:
                _save_samples(run, 64, RunDir(run.run_dir).sample_grid(step))
            if (logger is not None and logger.loggers and step % _images_every(tc) == 0
                    and step != end):  # the session's last previews are drawn by _finish
                logger.images(step, preview_grids(_previews(run, 64)))
            if save:
                run.train_seconds = trained()
                run.save_checkpoint(last)
            bar.update(1)
            _stop_if_asked(stop, run, window, phase, saved=save, last=last, trained=trained)
        if run.ctx.is_main:  # the end of the budget, or an early stop (--max-steps): a partial run has pictures too
            _finish(run, logger)
    except BaseException:
        bar.close()
        if logger is not None:
            logger.close(quiet=True)  # the error in flight is the one to report, not a second one from closing
        raise
    bar.close()
    if logger is not None:
        logger.close()
    run.train_seconds = trained()
    return _summary(run, start, run.train_seconds - seconds_before, last)


def _stop_if_asked(stop: StopRequest, run: Run, window: MetricWindow, phase: str, *, saved: bool,
                   last: dict[str, Any], trained) -> None:
    """After SIGINT/SIGTERM (on any process): keep the step just done in a verified checkpoint, then stop."""
    signum = _stop_signal(stop, run)
    if not signum:
        return
    step = run.steps_done
    if not saved:  # checked as before any checkpoint: a diverged step is never kept
        window.check(step, phase)
        _check_weights(run, step, phase)
        run.train_seconds = trained()
        run.save_checkpoint(last)
    if run.ctx.is_main:
        verify_checkpoint(run.run_dir, step)
    raise TrainingInterrupted(signum, step, str(run.run_dir))


def _check_weights(run: Run, step: int, phase: str) -> None:
    """Stop if an update left a non-finite weight. The losses checked above were computed before this step's
    updates, so a finite loss can still be followed by an overflowing update, which a checkpoint must not keep."""
    bad = [k for k, opt in run.objective.optimizers.items()
           if not all(bool(torch.isfinite(p).all()) for g in opt.param_groups for p in g["params"])]
    if bad:
        raise NonFiniteLossError(f"non-finite weights after the {' and '.join(bad)} update at step {step} (phase "
                                 f"{phase}); " + stop_advice(run.run_dir, bad, run.objective.base_lr))


def _log(run: Run, window: MetricWindow, logger: MetricLogger | None, bar, phase: str) -> dict[str, Any]:
    """The window's means (the loop's one host sync), logged by rank 0 and shown on the progress bar."""
    step = run.steps_done
    means, images_per_s = window.means(step, phase)
    last = {**means, "epoch": step / run.sampler.steps_per_epoch, "phase": phase, "images_per_s": images_per_s,
            **{f"lr/{k}": opt.param_groups[0]["lr"] for k, opt in run.objective.optimizers.items()}}
    if logger is not None:
        logger.log(step, last)
    bar.set_postfix({k.split("/")[0][:2] + "/" + k.split("/")[-1]: f"{v:.4g}" for k, v in last.items()
                     if k.endswith("loss")})
    return last


def _save_samples(run: Run, n: int, path: Path) -> None:
    """A grid of ``n`` samples from the fixed generator seed 0, so grids of one run compare across steps."""
    save_image_grid(sample_images(run.model, _fixed_images(run), n), path)


def _images_every(tc) -> int:
    """Steps between TensorBoard image previews: ``train.images_every``, else every checkpoint (cheap: 64 samples
    and 8 reconstructions, about one training step's work)."""
    return tc.images_every or tc.checkpoint_every


def _fixed_images(run: Run) -> torch.Tensor:
    """The first training images: the previews' inputs (and a conditional model's conditions), fixed per run."""
    return run.data.batch(torch.arange(min(RECON_PAIRS, len(run.data)), device=run.device))


def _previews(run: Run, n_samples: int) -> dict:
    return preview_images(run.model, _fixed_images(run), n_samples=n_samples)


def _finish(run: Run, logger: MetricLogger | None) -> None:
    """The end of a session (at the end of the budget or stopped early): the report's pictures in RUN_DIR/samples,
    the same to every logger, and each logger's summary (TensorBoard's hparams)."""
    images = _previews(run, 100)
    save_previews(images, run.run_dir)
    if logger is not None:
        logger.images(run.steps_done, preview_grids(images))
        write_summaries(run.run_dir, logger.loggers)  # the config with the final losses, to every logger
        logger.close()


def _summary(run: Run, start: int, wall: float, last: dict[str, Any]) -> dict[str, Any]:
    steps = run.steps_done - start
    return {"step": run.steps_done, "total_steps": run.budget.total_steps, "steps_this_session": steps,
            "wall_s": wall, "train_s_total": run.train_seconds,
            "images_per_s": steps * run.cfg.train.batch_size / max(wall, 1e-9),
            "peak_memory_mb": peak_memory_mb(run.device), "metrics": last, "run_dir": str(run.run_dir),
            "device": str(run.device), "world_size": run.ctx.world_size}
