"""``python benchmarks/fault_child.py ARGS...`` runs ``latentprior ARGS`` with one numeric fault injected.

``LATENTPRIOR_FAULT=KIND:K`` picks the fault; the K-th event of that kind gets it:

* ``batch:K``      — the K-th training batch is all NaN (the batch ``Run.step`` prepares; preview batches drawn
  from the same dataset are not counted);
* ``param:K``      — after the K-th optimizer step, that optimizer's first parameter becomes +inf;
* ``logdensity:K`` — the K-th call of a prior's ``log_prob`` returns -inf;
* ``tbwrite:K``    — TensorBoard's record writer (run by its background thread) raises ENOSPC from its K-th
  event on, as on a disk that just filled up.

The library has no fault hook, so this monkeypatches from outside, in the child only. When the fault fires,
the step count so far is written to ``LATENTPRIOR_FAULT_MARK`` (a path), so the harness can tell a run that
stopped from one the fault never reached.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

__all__ = ["install"]


def _mark(count: int) -> None:
    mark = os.environ.get("LATENTPRIOR_FAULT_MARK")
    if mark:
        Path(mark).write_text(str(count))


def _counter(k: int):
    calls = {"n": 0}

    def due() -> bool:
        calls["n"] += 1
        if calls["n"] == k:
            _mark(k)
            return True
        return False

    return due


def _subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def install(spec: str) -> None:
    kind, k = spec.split(":")
    due = _counter(int(k))
    if kind == "batch":
        import latentprior.training.run as run_module

        original = run_module.prepare_batch  # what Run.step, and only it, calls on each training batch

        def prepare_batch(x, tc):
            x = original(x, tc)
            return torch.full_like(x, float("nan")) if due() else x

        run_module.prepare_batch = prepare_batch
    elif kind == "param":
        def poison(optimizer, args, kwargs) -> None:
            if due():
                with torch.no_grad():
                    optimizer.param_groups[0]["params"][0].fill_(float("inf"))

        from torch.optim.optimizer import register_optimizer_step_post_hook

        register_optimizer_step_post_hook(poison)
    elif kind == "logdensity":
        import latentprior.priors  # noqa: F401 - registers every prior class
        from latentprior.priors.base import Prior

        for cls in [Prior, *_subclasses(Prior)]:
            if "log_prob" in vars(cls):
                cls.log_prob = _poisoned(cls.log_prob, due)
    elif kind == "tbwrite":
        import errno

        from tensorboard.summary.writer import record_writer

        original_write = record_writer.RecordWriter.write
        calls = {"n": 0}

        def write(self, data):
            calls["n"] += 1
            if calls["n"] == int(k):
                _mark(calls["n"])
            if calls["n"] >= int(k):
                raise OSError(errno.ENOSPC, "No space left on device")
            return original_write(self, data)

        record_writer.RecordWriter.write = write
    else:
        raise SystemExit(f"unknown fault {spec!r}")


def _poisoned(log_prob, due):
    def wrapped(self, *args, **kwargs):
        out = log_prob(self, *args, **kwargs)
        return out - float("inf") if due() else out

    return wrapped


if __name__ == "__main__":
    install(os.environ["LATENTPRIOR_FAULT"])
    from latentprior.cli import main

    sys.exit(main(sys.argv[1:]))
