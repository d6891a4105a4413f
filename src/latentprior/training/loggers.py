"""Where a run's numbers and pictures go (``train.loggers``): TensorBoard (the default), MLflow, Weights & Biases.

The loop talks to a list of :class:`RunLogger` and never to a tracker itself; each gets the same things:

    scalars(step, values)    the logged losses, epoch, images/s (tagged with the phase), learning rates
    images(step, grids)      the previews: samples, reconstructions, interpolation (uint8 (H, W, 3) grids)
    summary(config, metrics, step)   the resolved config with the final losses and the eval metrics, at the end
                             of training and after each ``latentprior eval`` (:func:`write_summaries`)

* ``tensorboard``: :class:`~latentprior.training.tensorboard.RunBoard` in ``RUN_DIR/tb`` and its hparams table.
* ``mlflow``: MLflow's file store in ``RUN_DIR/mlruns`` (no server; view it with
  ``mlflow ui --backend-store-uri RUN_DIR/mlruns``). MLflow 3 deprecates that store in favour of a database and
  refuses it unless ``MLFLOW_ALLOW_FILE_STORE`` is set, which this module sets for its own process. Config keys
  are run parameters (set once: MLflow's parameters cannot change, so keys changed on resume are in the
  ``config.yaml`` artifact, rewritten with each summary), scalars are metrics, previews are MLflow images.
* ``wandb``: W&B in offline mode by default (``WANDB_MODE`` chooses otherwise), its files in ``RUN_DIR/wandb``;
  ``wandb sync RUN_DIR/wandb/offline-run-*`` uploads them. The config is the run's config, the summary holds the
  final losses and eval metrics.

A resumed run continues the same MLflow run and W&B run: their ids are kept in ``RUN_DIR/loggers.json``
(``latentprior.rundir.logger_ids``). TensorBoard purges the events an interrupted attempt logged after its last
checkpoint; MLflow keeps them beside the repeated steps, and W&B drops repeated steps below its last one.
"""

from __future__ import annotations

import os
import secrets
import string
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from latentprior.atomic import writing
from latentprior.config import flatten
from latentprior.errors import UserError
from latentprior.rundir import RunDir, read_logger_ids, read_run_config, run_dir_of, write_logger_id
from latentprior.training.tensorboard import RunBoard, _final_metrics, write_hparams

__all__ = ["RunLogger", "LOGGERS", "open_loggers", "write_summaries", "LoggerUnavailableError", "PROJECT",
           "MlflowLogger", "WandbLogger", "TensorBoardLogger"]

PROJECT = "latentprior"  # the MLflow experiment and the W&B project a run is logged under (WANDB_PROJECT wins)


class LoggerUnavailableError(ImportError, UserError):
    """``train.loggers`` names a tracker whose package is not installed."""


class RunLogger(Protocol):
    name: str

    def scalars(self, step: int, values: dict[str, Any]) -> None: ...

    def images(self, step: int, grids: dict[str, np.ndarray]) -> None: ...

    def summary(self, config: dict[str, Any], metrics: dict[str, float], step: int) -> None: ...

    def close(self) -> None: ...


def _numbers(values: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of ``values``, ``images_per_s`` tagged with the phase (as TensorBoard shows it)."""
    phase = values.get("phase")
    out = {}
    for k, v in values.items():
        if isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v):
            out[f"{k}/{phase}" if k == "images_per_s" and phase else k] = float(v)
    return out


def _require(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise LoggerUnavailableError(f"train.loggers names '{extra}', but {module} is not installed; "
                                     f"pip install 'latentprior[{extra}]' (or remove it from train.loggers)") from e


class TensorBoardLogger:
    """``RUN_DIR/tb`` through :class:`RunBoard`; its summary is the hparams table, written after it closes."""

    name = "tensorboard"

    def __init__(self, run_dir: RunDir, resume_step: int = 0) -> None:
        self.run_dir, self._closed = run_dir, False
        with writing(run_dir.tensorboard):
            self.board = RunBoard(run_dir, resume_step)

    def scalars(self, step: int, values: dict[str, Any]) -> None:
        self.board.scalars(step, values)

    def images(self, step: int, grids: dict[str, np.ndarray]) -> None:
        self.board.images(step, grids)

    def summary(self, config: dict[str, Any], metrics: dict[str, float], step: int) -> None:
        self.close()  # flushed before the hparams are written beside it
        write_hparams(self.run_dir)

    def close(self) -> None:
        """Close the writer once (a second call, after a summary or a failed close, does nothing)."""
        if self._closed:
            return
        self._closed = True
        self.board.close()


class MlflowLogger:
    """One MLflow run in the file store ``RUN_DIR/mlruns``, created on first use and continued after."""

    name = "mlflow"

    def __init__(self, run_dir: RunDir, resume_step: int = 0) -> None:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # a local file store, no database or server
        tracking = _require("mlflow.tracking", "mlflow")
        self._entities = _require("mlflow.entities", "mlflow")
        self.run_dir = run_dir
        self.client = tracking.MlflowClient(tracking_uri=run_dir.mlruns.resolve().as_uri())
        run_id = read_logger_ids(run_dir).get(self.name)
        if run_id is None or not self._exists(run_id):
            exp = self.client.get_experiment_by_name(PROJECT)
            exp_id = exp.experiment_id if exp is not None else self.client.create_experiment(PROJECT)
            run_id = self.client.create_run(exp_id, run_name=run_dir.name).info.run_id
            write_logger_id(run_dir, self.name, run_id)
        else:
            self.client.update_run(run_id, status="RUNNING")
        self.run_id = run_id

    def _exists(self, run_id: str) -> bool:
        try:
            self.client.get_run(run_id)
        except Exception:  # an id from a store that was since removed: start a new run
            return False
        return True

    def _metrics(self, values: dict[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        batch = [self._entities.Metric(k, v, now, step) for k, v in values.items()]
        for i in range(0, len(batch), 1000):  # MLflow's limit per batch
            self.client.log_batch(self.run_id, metrics=batch[i:i + 1000])

    def scalars(self, step: int, values: dict[str, Any]) -> None:
        self._metrics(_numbers(values), step)

    def images(self, step: int, grids: dict[str, np.ndarray]) -> None:
        for name, grid in grids.items():
            self.client.log_image(self.run_id, np.asarray(grid), key=name, step=step)

    def summary(self, config: dict[str, Any], metrics: dict[str, float], step: int) -> None:
        flat = {k: str(v) for k, v in flatten(config).items()}
        logged = self.client.get_run(self.run_id).data.params
        new = [self._entities.Param(k, v[:6000]) for k, v in flat.items() if k not in logged]
        for i in range(0, len(new), 100):
            self.client.log_batch(self.run_id, params=new[i:i + 100])
        self.client.log_dict(self.run_id, config, self.run_dir.config.name)  # the run's config file, as an artifact
        self._metrics(metrics, step)

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


class WandbLogger:
    """One W&B run (offline unless ``WANDB_MODE`` says otherwise) whose files go to ``RUN_DIR/wandb``."""

    name = "wandb"

    def __init__(self, run_dir: RunDir, resume_step: int = 0) -> None:
        wandb = self._wandb = _require("wandb", "wandb")
        self.run_dir = run_dir
        run_id = read_logger_ids(run_dir).get(self.name)
        if run_id is None:
            run_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))  # W&B's form
            write_logger_id(run_dir, self.name, run_id)
        config = read_run_config(run_dir) or {}
        with writing(run_dir.wandb):
            run_dir.wandb.mkdir(parents=True, exist_ok=True)
            self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", PROJECT), name=run_dir.name, id=run_id,
                                  resume="allow", dir=str(run_dir.wandb.parent), config=config,
                                  mode=os.environ.get("WANDB_MODE", "offline"),
                                  settings=wandb.Settings(console="off", silent=True))

    def scalars(self, step: int, values: dict[str, Any]) -> None:
        self.run.log(_numbers(values), step=step)

    def images(self, step: int, grids: dict[str, np.ndarray]) -> None:
        self.run.log({name: self._wandb.Image(np.asarray(grid)) for name, grid in grids.items()}, step=step)

    def summary(self, config: dict[str, Any], metrics: dict[str, float], step: int) -> None:
        self.run.config.update(config, allow_val_change=True)
        self.run.summary.update(metrics)

    def close(self) -> None:
        self.run.finish()


LOGGERS: dict[str, type] = {"tensorboard": TensorBoardLogger, "mlflow": MlflowLogger, "wandb": WandbLogger}


def open_loggers(names: Iterable[str], run_dir: str | Path | RunDir, resume_step: int = 0) -> list[RunLogger]:
    """One logger per name of ``train.loggers``, in order (a tracker that is not installed: a one-line error)."""
    rd = run_dir_of(run_dir)
    opened: list[RunLogger] = []
    try:
        for name in names:
            opened.append(LOGGERS[name](rd, resume_step))
    except BaseException:
        for logger in opened:
            logger.close()
        raise
    return opened


def _configured(config: dict[str, Any]) -> list[str]:
    """``train.loggers`` of a run's config data (runs from before the key: TensorBoard alone)."""
    train = config.get("train") if isinstance(config.get("train"), dict) else {}
    names = train.get("loggers", ["tensorboard"])
    return [n for n in names if n in LOGGERS] if isinstance(names, list | tuple) else ["tensorboard"]


def write_summaries(run_dir: str | Path | RunDir, opened: list[RunLogger] | None = None) -> None:
    """Give every logger the run names its summary: the config, the final losses, the eval metrics.

    ``opened``: loggers the caller holds open (the loop, at the end of training); each is given the summary and
    left to the caller to close. Loggers not among them (``latentprior eval``, a sweep's trial) are opened on the
    same tracked run for the summary and closed again; TensorBoard's needs no writer (its hparams folder is
    rewritten whole). A run without a config has nothing to summarise.
    """
    rd = run_dir_of(run_dir)
    config = read_run_config(rd, strict=True)
    if config is None:
        return
    metrics, step = _final_metrics(rd)
    held = {logger.name: logger for logger in opened or []}
    for name in _configured(config):
        if name in held:
            held[name].summary(config, metrics, step)
        elif name == "tensorboard":
            write_hparams(rd)
        else:
            logger = LOGGERS[name](rd, step)
            try:
                logger.summary(config, metrics, step)
            finally:
                logger.close()
