"""The names of everything in a run directory and a sweep directory, and the one check that a name read from a
file stays inside its root.

    RUN_DIR/                      RunDir
      config.yaml                 the resolved config (rundir/config_file.py)
      config_history.jsonl        keys changed on resume (rundir/config_file.py)
      metrics.jsonl               one JSON record per logged step (rundir/metrics_log.py)
      checkpoints/                step_NNNNNNNN.pt + latest.json (rundir/checkpoints.py)
      eval/<metric>.json          one record per metric (rundir/eval_records.py)
      eval/temperature=<t>/       the records of samples drawn at sampling temperature t != 1
      samples/                    preview grids drawn by training (samples.png, reconstructions.png, ...)
      tb/                         TensorBoard events (training/tensorboard.py writes them)
      mlruns/                     MLflow's file store, with train.loggers: [..., mlflow] (training/loggers.py)
      wandb/                      W&B's offline run files, with train.loggers: [..., wandb] (training/loggers.py)
      loggers.json                the MLflow run id and W&B run id, so a resumed run continues them (logger_ids.py)
      figures/                    paper figures drawn from the run
      priors/<name>/              priors fitted after training (ex-post), each laid out like a run: its own
                                  checkpoints/ (rundir/prior_checkpoints.py), eval/, samples/
      run.lock                    the writer's advisory lock (rundir/lock.py)
      trial.log                   a sweep trial's output

    SWEEP_DIR/                    SweepDir
      sweep.json                  the sweep's state (rundir/sweep_state.py)
      runs/<name>/                one RunDir per run
      replaced/<name>-<time>/     runs moved aside by --rerun-changed
      report/                     the default report folder

Nothing else in the package spells these names: it asks a :class:`RunDir` or :class:`SweepDir` for paths.
This module imports neither torch nor YAML, so anything may use it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from latentprior.errors import UserError

__all__ = ["RunDir", "SweepDir", "UnsafePathError", "child_name", "inside", "PREVIEW_FILES", "run_dir_of"]

# Preview grids drawn at the end of training, by role (the report shows them in this order).
PREVIEW_FILES = {"samples": "samples.png", "reconstructions": "reconstructions.png",
                 "interpolation": "interpolation.png"}

# A name a file may give us for a child of a root: one path component of ordinary characters.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=-]{0,199}")


class UnsafePathError(ValueError, UserError):
    """A name read from a file (a run name, a checkpoint or metric name) would leave its root folder."""


def child_name(name: object, what: str, source: str | os.PathLike[str] | None = None) -> str:
    """``name`` if it is a plain folder/file name (one component, not ``.`` or ``..``, no separator, no leading
    dot), else :class:`UnsafePathError` naming ``what`` and the file it was read from."""
    if isinstance(name, str) and _NAME.fullmatch(name):
        return name
    where = f" in {source}" if source is not None else ""
    raise UnsafePathError(f"{what} {name!r}{where} is not a plain name (letters, digits, '_', '.', '-', '+', '=', "
                          "not starting with '.'); refusing a path that could leave its folder")


def inside(root: str | os.PathLike[str], path: str | os.PathLike[str], what: str = "path") -> Path:
    """``path`` resolved, if it lies inside ``root`` resolved (symlinks followed), else :class:`UnsafePathError`."""
    base, target = Path(root).resolve(), Path(path).resolve()
    if target != base and base not in target.parents:
        raise UnsafePathError(f"{what} {path} resolves to {target}, outside {base}; refusing to use it")
    return target


@dataclass(frozen=True)
class RunDir:
    """Paths of one run directory. Cheap to build; nothing is created or read until a caller asks."""

    path: Path

    def __init__(self, path: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "path", Path(path))

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def config_history(self) -> Path:
        return self.path / "config_history.jsonl"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def checkpoint_index(self) -> Path:
        return self.checkpoints / "latest.json"

    def checkpoint(self, file_name: str) -> Path:
        """A checkpoint file named by the index (a plain ``step_N.pt`` name, checked by the caller's schema)."""
        return self.checkpoints / child_name(file_name, "checkpoint file", self.checkpoint_index)

    @property
    def eval(self) -> Path:
        return self.path / "eval"

    def eval_dir(self, temperature: float = 1.0) -> Path:
        """``eval/``, or ``eval/temperature=<t>/`` for the records of samples drawn at a temperature t != 1 (so a
        tempered FID never stands in for the prior's own)."""
        return self.eval if temperature == 1.0 else self.eval / f"temperature={float(temperature):g}"

    def eval_record(self, metric: str, temperature: float = 1.0) -> Path:
        return self.eval_dir(temperature) / f"{child_name(metric, 'metric name')}.json"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    def sample_grid(self, step: int) -> Path:
        """``samples/step_NNNNNNNN.png``: the sample grid drawn at a training step (``train.samples_every``)."""
        return self.samples / f"step_{int(step):08d}.png"

    def preview(self, role: str) -> Path:
        """``samples/<file>`` of a preview role in :data:`PREVIEW_FILES` (samples, reconstructions, interpolation)."""
        return self.samples / PREVIEW_FILES[role]

    @property
    def tensorboard(self) -> Path:
        return self.path / "tb"

    @property
    def mlruns(self) -> Path:
        """MLflow's file store (its tracking URI is this folder's ``file://`` address)."""
        return self.path / "mlruns"

    @property
    def wandb(self) -> Path:
        """Where W&B writes its run files: ``wandb.init(dir=...)`` is given this folder's parent, the run directory,
        and makes this folder in it."""
        return self.path / "wandb"

    @property
    def logger_ids(self) -> Path:
        return self.path / "loggers.json"

    @property
    def figures(self) -> Path:
        return self.path / "figures"

    @property
    def priors(self) -> Path:
        return self.path / "priors"

    def prior(self, name: str) -> RunDir:
        """The folder of a prior fitted after training, itself laid out like a run (checkpoints/, eval/, samples/)."""
        return RunDir(self.priors / child_name(name, "prior name"))

    def prior_names(self) -> list[str]:
        """The names of the priors fitted into this run (folders of ``priors/`` holding a checkpoint index), sorted;
        a folder whose name is not a plain name is skipped."""
        if not self.priors.is_dir():
            return []
        return sorted(p.name for p in self.priors.iterdir()
                      if p.is_dir() and _NAME.fullmatch(p.name) and RunDir(p).checkpoint_index.is_file())

    @property
    def lock(self) -> Path:
        return self.path / "run.lock"

    @property
    def trial_log(self) -> Path:
        return self.path / "trial.log"

    def exists(self) -> bool:
        """Whether this folder holds a run (its config has been written)."""
        return self.config.is_file()


@dataclass(frozen=True)
class SweepDir:
    """Paths of one sweep directory; run names read from ``sweep.json`` are checked before they become paths."""

    path: Path

    def __init__(self, path: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "path", Path(path))

    @property
    def state(self) -> Path:
        return self.path / "sweep.json"

    @property
    def runs(self) -> Path:
        return self.path / "runs"

    def run(self, name: str) -> RunDir:
        """The run directory of run ``name`` (refused unless a plain name: it may come from ``sweep.json``)."""
        return RunDir(self.runs / child_name(name, "run name", self.state))

    def replaced(self, name: str, stamp: str) -> Path:
        return self.path / "replaced" / f"{child_name(name, 'run name')}-{stamp}"

    @property
    def report(self) -> Path:
        return self.path / "report"

    def is_sweep(self) -> bool:
        return self.state.is_file()


def run_dir_of(path: str | os.PathLike[str] | RunDir) -> RunDir:
    """``path`` as a :class:`RunDir` (a RunDir is returned as it is)."""
    return path if isinstance(path, RunDir) else RunDir(path)
