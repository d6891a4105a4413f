"""One trial of a sweep: train the run (resuming from its checkpoint), then evaluate what is missing.

A trial is a plain function of a JSON-able payload so that it can run in a Ray worker on another
machine; it returns a small JSON-able dict. Tests (and users) swap in their own trial function, or
wrap this one with ``functools.partial(run_trial, train_fn=..., evaluate_fn=...)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from latentprior.config import config_from_dict, config_to_dict, eval_config_from_dict
from latentprior.rundir import RunDir, SweepDir, eval_value, missing_metrics
from latentprior.sweeps.grid import SweepSpec, Trial

__all__ = ["run_trial", "make_payload", "read_eval", "TrialFn"]

TrialFn = Callable[[dict[str, Any]], dict[str, Any]]
ENV = ("LATENTPRIOR_DATA_DIR", "LATENTPRIOR_WEIGHTS_DIR", "LATENTPRIOR_CACHE_DIR")


def make_payload(trial: Trial, spec: SweepSpec, out: SweepDir) -> dict[str, Any]:
    """Everything a worker needs, as plain data: the resolved config, where to write, and the eval config
    (``eval.metrics`` holds only the metrics still missing, possibly none)."""
    run_dir = SweepDir(out.path.resolve()).run(trial.name)
    ev = spec.eval
    missing = missing_metrics(run_dir, ev)
    return {
        "name": trial.name,
        "run_dir": str(run_dir.path),
        "config": config_to_dict(trial.cfg),
        "eval": {**dataclasses.asdict(ev), "metrics": missing},
        "threads": spec.resources.threads,
        # where the data, trunk weights and caches are: a worker on another machine gets the driver's settings
        "env": {k: os.environ[k] for k in ENV if os.environ.get(k)},
    }


def read_eval(run_dir: str | Path | RunDir, metrics: list[str]) -> dict[str, Any]:
    """``{metric: value}`` of the stored eval records, for the metrics that have one."""
    values = {m: eval_value(run_dir, m) for m in metrics}
    return {m: v for m, v in values.items() if v is not None}


def _default_train(cfg, run_dir):
    from latentprior.training import train

    return train(cfg, run_dir)


def _default_evaluate(run_dir, eval_cfg, **kwargs):
    from latentprior.evaluation.runner import evaluate_run  # imported late: it loads the Inception network

    return evaluate_run(run_dir, eval_cfg, **kwargs)


def _train_total(summary: dict[str, Any], t_train: float) -> float | None:
    """The run's training over every attempt: the loop's seconds in earlier attempts (the checkpoint's total less
    this session's loop) plus this whole attempt's ``train_s``, so it is never below ``train_s``."""
    total, this_loop = summary.get("train_s_total"), summary.get("wall_s")
    if not isinstance(total, int | float) or not isinstance(this_loop, int | float):
        return None
    return round(max(0.0, float(total) - float(this_loop)) + t_train, 2)


def run_trial(payload: dict[str, Any], *, train_fn: Callable | None = None,
              evaluate_fn: Callable | None = None) -> dict[str, Any]:
    """Train ``payload['config']`` in ``payload['run_dir']`` (resuming), then evaluate ``payload['eval']``.

    Sets the torch CPU threads first (the sweep's ``resources.threads``), so that trials sharing a machine
    do not each spawn one thread per core. The run's stdout/stderr go to ``RUN_DIR/trial.log`` (and, when the
    trial fails, the driver appends the traceback there).
    """
    import torch

    train_fn = train_fn or _default_train
    evaluate_fn = evaluate_fn or _default_evaluate
    os.environ.update(payload.get("env") or {})
    threads = int(payload.get("threads") or 0)
    if threads > 0:
        torch.set_num_threads(threads)
    cfg = config_from_dict(payload["config"])
    run_dir = Path(payload["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with RunDir(run_dir).trial_log.open("a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        print(f"== trial {payload['name']} on {socket.gethostname()} pid {os.getpid()} at {time.ctime()}", flush=True)
        summary = train_fn(cfg, run_dir) or {}
        t_train = time.perf_counter() - t0
        if payload["eval"]["metrics"]:
            evaluate_fn(run_dir, eval_config_from_dict(payload["eval"]), data_dir=cfg.data.dir, progress=False)
            from latentprior.training.loggers import write_summaries

            write_summaries(run_dir)  # each logger's summary (TensorBoard's hparams table) with the eval metrics
    return {
        "name": payload["name"],
        "steps": summary.get("step"),
        "steps_this_session": summary.get("steps_this_session"),
        "train_s": round(t_train, 2),  # this attempt: opening the run, its data and the steps it took
        "train_total_s": _train_total(summary, t_train),
        "wall_s": round(time.perf_counter() - t0, 2),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
