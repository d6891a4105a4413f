"""Run a sweep's trials on Ray (or in-process), with retries, restart and a progress bar over the sweep.

The driver is the only writer of ``sweep.json``; trials only write inside their own run directory and
return a small dict. Retrying is the driver's job too (Ray's own retries are off), so that every
attempt and its error are recorded:

    restart -> runs whose eval files all exist are skipped; the others are (re)submitted and resume
               from their checkpoints
    failure -> retried up to ``retries`` more times in this invocation, then marked failed; the
               sweep goes on with the other runs
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import traceback
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from latentprior.config import ConfigError
from latentprior.experiments.grid import SweepSpec, expand, select_models
from latentprior.experiments.state import SweepState, run_is_done
from latentprior.experiments.trial import TrialFn, make_payload, read_eval, run_trial

__all__ = ["LocalExecutor", "RayExecutor", "run_sweep"]

_ERROR_CHARS = 4000  # the tail of a traceback kept in sweep.json


def _invoke(fn: TrialFn, payload: dict[str, Any]) -> dict[str, Any]:
    """What a Ray worker runs: ``fn`` arrives pickled by value or by reference, like any argument."""
    return fn(payload)


class LocalExecutor:
    """Runs trials one at a time in this process: for debugging (pdb works) and for fast tests."""

    name = "local"

    def __init__(self) -> None:
        self._queue: dict[int, tuple[TrialFn, dict[str, Any]]] = {}
        self._next = 0

    def submit(self, fn: TrialFn, payload: dict[str, Any]) -> int:
        self._next += 1
        self._queue[self._next] = (fn, payload)
        return self._next

    def wait_one(self, handles: Iterable[int]) -> tuple[int, bool, Any]:
        h = min(handles)
        fn, payload = self._queue.pop(h)
        try:
            return h, True, fn(payload)
        except Exception:  # a trial's failure is data for the driver, never a crash of the sweep
            return h, False, traceback.format_exc()

    def info(self) -> dict[str, Any]:
        return {"executor": self.name}

    def close(self) -> None:
        pass


class RayExecutor:
    """Submits trials as Ray tasks with ``num_cpus``/``num_gpus`` per trial.

    Without ``address`` it starts a local Ray with ``num_cpus`` CPUs (no dashboard), and shuts it down on
    :meth:`close`; with ``address`` (``auto`` or ``HOST:PORT``) it joins that cluster. A Ray session that
    is already initialised in this process (a test fixture, a notebook) is used as it is and left running.
    """

    name = "ray"

    def __init__(self, *, address: str | None = None, num_cpus: int | None = None, cpus_per_trial: float = 1,
                 gpus_per_trial: float = 0) -> None:
        import ray

        self._ray = ray
        self._owned = False
        if not ray.is_initialized():
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                # The dashboard and driver log forwarding would cost memory and clutter the progress bar;
                # each trial keeps its own RUN_DIR/trial.log instead.
                # Workers get the driver's sys.path, so a trial function importable here (from a script's folder,
                # a test module) is importable there too.
                path = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
                # Payloads and results are small dicts: a 256 MiB object store leaves the memory to the trials.
                ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False,
                         object_store_memory=256 * 2**20, runtime_env={"env_vars": {"PYTHONPATH": path}})
            self._owned = True
        have = ray.cluster_resources()
        if have.get("GPU", 0) < gpus_per_trial or have.get("CPU", 0) < cpus_per_trial:
            self.close()
            raise ConfigError(  # Ray would otherwise queue the trials forever, waiting for resources that never come
                f"each trial asks for {cpus_per_trial} CPU and {gpus_per_trial} GPU, but the Ray cluster has "
                f"{have.get('CPU', 0)} CPU and {have.get('GPU', 0)} GPU; change the sweep's resources block")
        self._remote = ray.remote(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial, max_retries=0)(_invoke)
        self._fn_refs: dict[int, Any] = {}  # id(fn) -> ObjectRef; the driver holds fn alive meanwhile

    def submit(self, fn: TrialFn, payload: dict[str, Any]) -> Any:
        if id(fn) not in self._fn_refs:  # pickle the trial function once, not once per trial
            self._fn_refs[id(fn)] = self._ray.put(fn)
        return self._remote.remote(self._fn_refs[id(fn)], payload)

    def wait_one(self, handles: Iterable[Any]) -> tuple[Any, bool, Any]:
        ready, _ = self._ray.wait(list(handles), num_returns=1)
        h = ready[0]
        try:
            return h, True, self._ray.get(h)
        except Exception as e:  # RayTaskError carries the worker's traceback in its message
            return h, False, f"{type(e).__name__}: {e}"

    def info(self) -> dict[str, Any]:
        res = self._ray.cluster_resources()
        return {"executor": self.name, "ray_version": self._ray.__version__, "local": self._owned,
                "cluster_cpus": res.get("CPU"), "cluster_gpus": res.get("GPU", 0)}

    def close(self) -> None:
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()


def _make_executor(kind: str, spec: SweepSpec, address: str | None, max_concurrent: int):
    if kind == "local":
        return LocalExecutor()
    res = spec.resources
    # A local Ray gets exactly enough CPUs for max_concurrent trials, which is what bounds concurrency.
    num_cpus = None if address else max(1, int(max_concurrent * res["cpus_per_trial"]))
    return RayExecutor(address=address, num_cpus=num_cpus, cpus_per_trial=res["cpus_per_trial"],
                       gpus_per_trial=res["gpus_per_trial"])


def _prepare(spec: SweepSpec, out: Path, state: SweepState, extra: dict[str, Any]) -> tuple[list, list]:
    """Expand the sweep, record every run in ``state``, and return (all trials, trials still to run)."""
    trials = expand(spec, extra)  # validates every run's config before anything starts
    metrics, n = list(spec.eval["metrics"]), spec.eval["n"]
    state.sync(trials)
    todo = []
    for t in trials:
        rec = state.runs[t.name]
        if run_is_done(out / "runs" / t.name, metrics, n):
            rec["status"] = "done"
        else:
            if rec["status"] == "done":  # its eval files were removed by hand: run it again
                rec["status"] = "pending"
            todo.append(t)
    state.save()
    return trials, todo


def run_sweep(spec: SweepSpec, out: str | Path, *, trial_fn: TrialFn = run_trial, executor: str = "ray",
              address: str | None = None, data_dir: str | None = None, max_concurrent: int | None = None,
              threads: int | None = None, models: list[str] | None = None, eval_n: int | None = None,
              progress: bool = True, sweep_file: str | None = None) -> dict[str, Any]:
    """Expand ``spec``, skip finished runs, and run the rest (train then evaluate) with retries.

    ``max_concurrent`` and ``threads`` override the spec's ``resources``, ``eval_n`` its ``eval.n`` (runs
    evaluated with another n are re-evaluated, not retrained); ``models`` keeps only those models;
    ``data_dir`` is given to every run (it does not enter run names). Returns a summary with the number of
    runs ``skipped`` because they were already finished and the number of trial attempts ``started``.
    """
    out = Path(out)
    res = {**spec.resources, **{k: v for k, v in (("threads", threads), ("max_concurrent", max_concurrent))
                                if v is not None}}
    spec = dataclasses.replace(spec, resources=res, eval={**spec.eval, **({"n": eval_n} if eval_n else {})})
    if models:
        spec = select_models(spec, models)
    extra: dict[str, Any] = {"train.progress": False, "train.threads": res["threads"]}
    if data_dir:
        extra["data.dir"] = str(Path(data_dir).resolve())
    state = SweepState.open(out, sweep={"name": spec.name, "file": sweep_file, "grid": spec.grid,
                                        "models": spec.models, "datasets": spec.datasets, "eval": spec.eval,
                                        "resources": res, "retries": spec.retries})
    trials, todo = _prepare(spec, out, state, extra)
    metrics = list(spec.eval["metrics"])
    skipped = len(trials) - len(todo)
    if res["max_concurrent"]:
        cap = res["max_concurrent"]
    elif address:  # a cluster: submit everything and let Ray's resource accounting decide
        cap = len(todo)
    else:
        cap = (os.cpu_count() or 1) // max(1, int(res["cpus_per_trial"]))
    cap = max(1, min(cap, len(todo)))

    t0 = time.time()
    bar = tqdm(total=len(trials), initial=skipped, desc=f"sweep {spec.name}", unit="run", disable=not progress,
               dynamic_ncols=True)
    started, failed, attempts = 0, [], {t.name: 0 for t in todo}
    inflight: dict[Any, Any] = {}
    queue = deque(todo)
    ex = None
    try:
        ex = _make_executor(executor, spec, address, cap) if todo else None
        while queue or inflight:
            while queue and len(inflight) < cap:
                t = queue.popleft()
                attempts[t.name] += 1
                started += 1
                state.mark(t.name, "running", attempts=state.runs[t.name]["attempts"] + 1, started=time.time())
                inflight[ex.submit(trial_fn, make_payload(t, spec, out))] = t
            bar.set_postfix(running=len(inflight), failed=len(failed), refresh=True)
            h, ok, value = ex.wait_one(list(inflight))
            t = inflight.pop(h)
            run_dir = out / "runs" / t.name
            if ok and not run_is_done(run_dir, metrics, spec.eval["n"]):
                ok, value = False, f"the trial returned but eval files are missing for {metrics} in {run_dir}/eval"
            if ok:
                state.mark(t.name, "done", error=None, result=value, eval=read_eval(run_dir, metrics))
                bar.update(1)
                bar.write(f"done    {t.name}  {read_eval(run_dir, metrics)}")
            elif attempts[t.name] <= spec.retries:
                state.mark(t.name, "pending", error=str(value)[-_ERROR_CHARS:])
                bar.write(f"retry   {t.name}: {str(value).strip().splitlines()[-1] if value else ''}")
                queue.append(t)
            else:
                failed.append(t.name)
                state.mark(t.name, "failed", error=str(value)[-_ERROR_CHARS:])
                bar.update(1)
                bar.write(f"FAILED  {t.name} after {attempts[t.name]} attempts (error in {state.path})")
    except BaseException:
        # Interrupted (Ctrl-C, SIGTERM): the runs in flight stay resumable from their checkpoints.
        for t in inflight.values():
            state.runs[t.name]["status"] = "pending"
        state.save()
        raise
    finally:
        bar.close()
        info: dict[str, Any] = {"executor": executor}
        if ex is not None:
            try:
                info = ex.info()
            finally:
                ex.close()
    return {"sweep": spec.name, "out": str(out), "trials": len(trials), "skipped": skipped, "started": started,
            "done": sum(1 for t in trials if state.runs[t.name]["status"] == "done"), "failed": failed,
            "status_counts": state.counts(), "max_concurrent": cap, "threads": res["threads"],
            "wall_s": round(time.time() - t0, 2), **info}
