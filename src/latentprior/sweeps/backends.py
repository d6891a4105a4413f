"""Where a sweep's trials run: in this process (:class:`LocalExecutor`) or as Ray tasks (:class:`RayExecutor`),
and what a failed trial reports back (:class:`Failure`).

Both executors have the same calls: ``submit(fn, payload) -> handle``, ``wait_one(handles) -> (handle,
ok, result or Failure)``, ``interrupt(handles)`` (stop the trials in flight at a checkpoint), ``close()``.
A trial's exception never escapes ``wait_one``: it becomes a :class:`Failure` that says whether retrying can help.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from latentprior.config import ConfigError
from latentprior.errors import UserError
from latentprior.sweeps.grid import SweepSpec
from latentprior.sweeps.trial import TrialFn

__all__ = ["Failure", "LocalExecutor", "RayExecutor", "make_executor"]


@dataclass(frozen=True)
class Failure:
    """A failed attempt: the full traceback text, and whether the error will recur on a retry.

    ``deterministic``: a :class:`~latentprior.errors.UserError` (a config, data or checkpoint problem, a metric
    the run cannot give, a diverged loss: resuming from the same checkpoint with the same seed diverges again).
    ``signature``: the exception's last line, to spot the same failure twice in a row.
    """

    text: str
    deterministic: bool = False

    @classmethod
    def of(cls, error: BaseException, text: str) -> Failure:
        return cls(text, isinstance(error, UserError))

    @property
    def signature(self) -> str:
        lines = [ln.strip() for ln in self.text.strip().splitlines() if ln.strip()]
        return lines[-1] if lines else ""


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
        except Exception as e:  # a trial's failure is data for the driver, never a crash of the sweep
            return h, False, Failure.of(e, traceback.format_exc())

    def info(self) -> dict[str, Any]:
        return {"executor": self.name}

    def interrupt(self, handles: Iterable[int]) -> None:
        """Nothing to do: a local trial runs in this process, so the signal reached its training loop itself."""

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
        # ray.init replaces the driver's SIGTERM handler with sys.exit (and its core adds a crash handler that
        # prints a stack); the command's own handler (latentprior.interrupts) is put back below, so SIGTERM stops
        # the sweep as Ctrl-C does: trials checkpointed, state saved
        term = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
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
        if term is not None:
            signal.signal(signal.SIGTERM, term)
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
        except Exception as e:  # RayTaskError carries the worker's traceback in its message, and the exception
            return h, False, Failure.of(getattr(e, "cause", None) or e, f"{type(e).__name__}: {e}")

    def interrupt(self, handles: Iterable[Any], timeout: float = 120) -> None:
        """Cancel the trials in flight and wait up to ``timeout`` s for them to stop. Ray cancels a running task
        by raising Ctrl-C in its worker's main thread, so the trial's training loop finishes its step and writes
        a checkpoint of it, as it would for a user's Ctrl-C (a second Ctrl-C here stops waiting)."""
        handles = list(handles)
        for h in handles:
            with contextlib.suppress(Exception):  # already finished, or its worker died
                self._ray.cancel(h, force=False)
        with contextlib.suppress(Exception):
            self._ray.wait(handles, num_returns=len(handles), timeout=timeout)

    def info(self) -> dict[str, Any]:
        res = self._ray.cluster_resources()
        return {"executor": self.name, "ray_version": self._ray.__version__, "local": self._owned,
                "cluster_cpus": res.get("CPU"), "cluster_gpus": res.get("GPU", 0)}

    def close(self) -> None:
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()


def make_executor(kind: str, spec: SweepSpec, address: str | None, max_concurrent: int):
    if kind == "local":
        return LocalExecutor()
    res = spec.resources
    # A local Ray gets exactly enough CPUs for max_concurrent trials, which is what bounds concurrency.
    num_cpus = None if address else max(1, int(max_concurrent * res.cpus_per_trial))
    return RayExecutor(address=address, num_cpus=num_cpus, cpus_per_trial=res.cpus_per_trial,
                       gpus_per_trial=res.gpus_per_trial)
