"""Run a sweep: check it whole, then train and evaluate its runs (on Ray or in this process) with retries,
restart and a progress bar.

    check   -> every run's config and the metric names (grid.py), the sample counts, and the runs whose saved
               config the sweep file has since changed (checks.py): a bad sweep stops here, having created nothing
    restart -> runs whose eval files all exist are skipped; the others are (re)submitted and resume from their
               checkpoints
    failure -> the full traceback is appended to RUN_DIR/trial.log; the run is retried up to ``retries`` more
               times in this invocation unless the error will recur (a UserError, or the same exception as the
               attempt before), then marked failed; the sweep goes on with the other runs
    Ctrl-C  -> (or SIGTERM) the runs in flight are told to stop (a local trial is in this process and gets the
               signal itself; a Ray trial is cancelled, which its training loop takes as Ctrl-C): each finishes
               its step and checkpoints it, and is recorded 'interrupted'; a rerun continues them

The driver is the only writer of ``sweep.json``; trials only write inside their own run directory and return a
small dict. Retrying is the driver's job too (Ray's own retries are off), so that every attempt is recorded.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import deque
from pathlib import Path
from typing import Any

from latentprior.config import EvalConfig
from latentprior.formatting import fmt_metrics
from latentprior.progress_bar import progress_bar
from latentprior.rundir import RunDir, SweepDir, SweepState, missing_metrics
from latentprior.sweeps.backends import Failure, make_executor
from latentprior.sweeps.checks import (
    ChangedRunsError,
    changed_runs,
    changed_runs_message,
    check_sample_counts,
    move_aside,
)
from latentprior.sweeps.grid import SweepSpec, Trial, expand, select_models
from latentprior.sweeps.trial import TrialFn, make_payload, read_eval, run_trial

__all__ = ["run_sweep"]

_ERROR_CHARS = 4000  # the tail of a traceback kept in sweep.json (the whole of it is in RUN_DIR/trial.log)


def _todo(trials: list[Trial], out: SweepDir, state: SweepState, ev: EvalConfig) -> list[Trial]:
    """Record every run in ``state`` and return the trials still to run."""
    state.sync((t.name, t.labels, t.overrides) for t in trials)
    todo = []
    for t in trials:
        rec = state.runs[t.name]
        if not missing_metrics(out.run(t.name), ev):
            rec["status"] = "done"
        else:
            if rec["status"] == "done":  # its eval files were removed by hand: run it again
                rec["status"] = "pending"
            todo.append(t)
    state.save()
    return todo


def _configure(spec: SweepSpec, *, threads: int | None, max_concurrent: int | None, eval_n: int | None,
               models: list[str] | None) -> SweepSpec:
    """``spec`` with the command line's overrides of its resources, eval sample count and models."""
    res = dataclasses.replace(spec.resources, **{k: v for k, v in (("threads", threads),
                                                                  ("max_concurrent", max_concurrent)) if v is not None})
    spec = dataclasses.replace(spec, resources=res,
                               eval=dataclasses.replace(spec.eval, n=eval_n) if eval_n else spec.eval)
    return select_models(spec, models) if models else spec


def _concurrency(spec: SweepSpec, address: str | None, n_todo: int) -> int:
    res = spec.resources
    if res.max_concurrent:
        cap = res.max_concurrent
    elif address:  # a cluster: submit everything and let Ray's resource accounting decide
        cap = n_todo
    else:
        cap = (os.cpu_count() or 1) // max(1, int(res.cpus_per_trial))
    return max(1, min(cap, n_todo))


def _final(failure: Failure, previous: str | None, attempts: int, retries: int) -> str | None:
    """Why this failure ends the run (None: retry it)."""
    if failure.deterministic:
        return "a user error, which a retry would repeat"
    if previous == failure.signature:
        return "the same error twice in a row"
    if attempts > retries:
        return f"{attempts} attempts"
    return None


def _log_failure(run_dir: RunDir, attempt: int, failure: Failure, final: str | None) -> None:
    """Append the attempt's whole traceback to RUN_DIR/trial.log (the trial's own output is already there)."""
    run_dir.path.mkdir(parents=True, exist_ok=True)
    verdict = f"final: {final}" if final else "will be retried"
    with run_dir.trial_log.open("a") as log:
        log.write(f"== attempt {attempt} failed at {time.ctime()} ({verdict})\n{failure.text.rstrip()}\n")


class _Progress:
    """The sweep's bar: its count is the runs finished (done or failed, including those skipped as done), and its
    postfix says how many are done, failed, running and waiting for a retry."""

    def __init__(self, name: str, total: int, done: int, enabled: bool) -> None:
        # rounded down: 199 of 200 runs reads 99 %, not 100 %, while the last one still runs
        self.bar = progress_bar(total=total, initial=done, desc=f"sweep {name}", unit="run", disable=not enabled,
                                dynamic_ncols=True)
        self.done, self.failed, self.running, self.retrying = done, 0, 0, 0

    def show(self) -> None:
        self.bar.set_postfix(done=self.done, failed=self.failed, running=self.running, retry=self.retrying,
                             refresh=True)

    def finished(self, ok: bool, line: str) -> None:
        self.done += ok
        self.failed += not ok
        self.bar.update(1)
        self.bar.write(line)
        self.show()


def run_sweep(spec: SweepSpec, out: str | Path, *, trial_fn: TrialFn = run_trial, executor: str = "ray",
              address: str | None = None, data_dir: str | None = None, max_concurrent: int | None = None,
              threads: int | None = None, models: list[str] | None = None, eval_n: int | None = None,
              progress: bool = True, sweep_file: str | None = None, rerun_changed: bool = False) -> dict[str, Any]:
    """Check the whole sweep, skip finished runs, and run the rest (train then evaluate) with retries.

    ``max_concurrent`` and ``threads`` override the spec's ``resources``, ``eval_n`` its ``eval.n`` (runs
    evaluated with another n are re-evaluated, not retrained); ``models`` keeps only those models;
    ``data_dir`` is given to every run (it does not enter run names). Runs whose saved config differs from the
    sweep's raise :class:`ChangedRunsError`, unless ``rerun_changed`` (then their folders move to
    ``OUT/replaced/`` and they train again). Returns a summary: runs ``skipped`` (already done), trial attempts
    ``started``, the ``failed`` run names.
    """
    out = SweepDir(out)
    spec = _configure(spec, threads=threads, max_concurrent=max_concurrent, eval_n=eval_n, models=models)
    extra: dict[str, Any] = {"train.progress": False, "train.threads": spec.resources.threads}
    if data_dir:
        extra["data.dir"] = str(Path(data_dir).resolve())
    # Everything that can be known to fail is checked here, before a folder is made or a trial starts.
    trials = expand(spec, extra)
    check_sample_counts(spec.eval, trials)
    changed = changed_runs(out, trials)
    if changed and not rerun_changed:
        raise ChangedRunsError(changed_runs_message(out, changed))
    state = SweepState.open(out, sweep={"name": spec.name, "file": sweep_file, "grid": spec.grid,
                                        "models": spec.models, "datasets": spec.datasets,
                                        "eval": dataclasses.asdict(spec.eval),
                                        "resources": dataclasses.asdict(spec.resources), "retries": spec.retries})
    if changed:  # --rerun-changed: the old folders are kept in OUT/replaced/, the runs start again
        move_aside(out, list(changed))
        state.reset(list(changed))
    todo = _todo(trials, out, state, spec.eval)
    cap = _concurrency(spec, address, len(todo))
    t0 = time.time()
    bar = _Progress(spec.name, len(trials), len(trials) - len(todo), progress)
    ex, info = None, {"executor": executor}
    try:
        ex = make_executor(executor, spec, address, cap) if todo else None
        started, failed = _execute(spec, out, state, todo, trial_fn, ex, cap, bar)
    finally:
        bar.bar.close()
        if ex is not None:
            try:
                info = ex.info()
            finally:
                ex.close()
    return {"sweep": spec.name, "out": str(out.path), "trials": len(trials), "skipped": len(trials) - len(todo),
            "started": started, "done": sum(1 for t in trials if state.runs[t.name]["status"] == "done"),
            "failed": failed, "replaced": sorted(changed), "status_counts": state.counts(), "max_concurrent": cap,
            "threads": spec.resources.threads, "wall_s": round(time.time() - t0, 2), **info}


def _execute(spec: SweepSpec, out: SweepDir, state: SweepState, todo: list[Trial], trial_fn: TrialFn, ex, cap: int,
             bar: _Progress) -> tuple[int, list[str]]:
    """Submit ``todo`` (at most ``cap`` at once), record each result, retry what may succeed.

    Returns (attempts started, failed run names)."""
    metrics = list(spec.eval.metrics)
    started, failed, attempts = 0, [], {t.name: 0 for t in todo}
    previous: dict[str, str] = {}  # run name -> its last failure's signature
    inflight: dict[Any, Trial] = {}
    queue = deque(todo)
    try:
        while queue or inflight:
            while queue and len(inflight) < cap:
                t = queue.popleft()
                attempts[t.name] += 1
                started += 1
                state.mark(t.name, "running", attempts=state.runs[t.name]["attempts"] + 1, started=time.time())
                inflight[ex.submit(trial_fn, make_payload(t, spec, out))] = t
            bar.running, bar.retrying = len(inflight), sum(1 for t in queue if attempts[t.name])
            bar.show()
            h, ok, value = ex.wait_one(list(inflight))
            t = inflight.pop(h)
            run_dir = out.run(t.name)
            if ok and missing_metrics(run_dir, spec.eval):
                ok, value = False, Failure(f"the trial returned but eval files are missing for {metrics} in "
                                           f"{run_dir.eval}")
            bar.running = len(inflight)
            if ok:
                state.mark(t.name, "done", error=None, result=value, eval=read_eval(run_dir, metrics))
                bar.finished(True, f"done    {t.name}  {fmt_metrics(read_eval(run_dir, metrics))}")
                continue
            final = _final(value, previous.get(t.name), attempts[t.name], spec.retries)
            previous[t.name] = value.signature
            _log_failure(run_dir, attempts[t.name], value, final)
            if final is None:
                state.mark(t.name, "pending", error=value.text[-_ERROR_CHARS:])
                bar.bar.write(f"retry   {t.name}: {value.signature}")
                queue.append(t)
            else:
                failed.append(t.name)
                state.mark(t.name, "failed", error=value.text[-_ERROR_CHARS:], failure=final)
                bar.finished(False, f"FAILED  {t.name} ({final}): {value.signature} "
                                    f"[traceback in {run_dir.trial_log}]")
    except BaseException as e:
        # Interrupted (Ctrl-C, SIGTERM): the runs in flight are 'interrupted', resumable from their checkpoints
        # (a rerun continues them). Saved first: a second Ctrl-C during the wait below must not lose it.
        stopped = isinstance(e, KeyboardInterrupt)
        for t in inflight.values():
            state.runs[t.name]["status"] = "interrupted" if stopped else "pending"
        state.save()
        if stopped and inflight:
            ex.interrupt(list(inflight))  # each trial's loop finishes its step and checkpoints it
        raise
    return started, failed
