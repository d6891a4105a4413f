"""Ctrl-C (SIGINT) and SIGTERM: how a command stops when asked to.

Two behaviours, chosen by what the command is doing:

* :func:`stop_at_once` (every CLI verb, around all it does): the signal raises :class:`Interrupted` where the
  command is. Every file the package writes whole goes through ``atomic.py`` (a temporary file renamed into
  place, removed on any exception), so stopping anywhere leaves each file old or new, never half written.
* :func:`stop_after_step` (the training loop): the first signal only sets a flag; the loop finishes the step it
  is in, writes a verified checkpoint of it and raises :class:`TrainingInterrupted`, whose message says how to
  continue. A second signal stops at once (:class:`Interrupted`), which the atomic writes make safe too.

:class:`Interrupted` is a :class:`KeyboardInterrupt`, so code that already treats Ctrl-C as "stop, keep what is
saved" (a sweep's driver) treats SIGTERM alike. Its ``exit_status`` is the shell's convention, 128 + the signal
number: 130 for SIGINT, 143 for SIGTERM.

A signal the process inherited as ignored (``nohup``, a shell's background job) stays ignored, and handlers are
installed only in the main thread (the only one Python delivers signals to). Imports neither torch nor YAML.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["Interrupted", "TrainingInterrupted", "StopRequest", "stop_at_once", "stop_after_step", "exit_status",
           "SIGNALS"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Interrupted(KeyboardInterrupt):
    """The command was stopped by a signal; ``str()`` is the one line to show, ``exit_status`` 128 + signal."""

    def __init__(self, signum: int, message: str | None = None) -> None:
        self.signum = int(signum)
        self.message = message or (f"interrupted by {_name(signum)}: stopped before finishing; every file is "
                                   "written whole, so none was left half-written; run the command again to "
                                   "finish")
        super().__init__(self.message)

    def __reduce__(self):  # a sweep's Ray worker sends it to the driver
        return type(self), (self.signum, self.message)

    @property
    def exit_status(self) -> int:
        return 128 + self.signum

    def __str__(self) -> str:
        return self.message


class TrainingInterrupted(Interrupted):
    """Training stopped on a signal after checkpointing step ``step`` of ``run_dir``."""

    def __init__(self, signum: int, step: int, run_dir: str) -> None:
        self.step, self.run_dir = int(step), str(run_dir)
        super().__init__(signum, f"interrupted at step {self.step}; continue with: latentprior resume {self.run_dir}")

    def __reduce__(self):
        return type(self), (self.signum, self.step, self.run_dir)


_received: list[int] = []  # the signals the handlers below have seen, in order


def exit_status(error: KeyboardInterrupt) -> int:
    """The exit status for a KeyboardInterrupt: its own (:class:`Interrupted`), else that of the last signal
    received here (a library that catches our exception and raises a plain KeyboardInterrupt, as Ray's ``wait``
    does), else 130."""
    if isinstance(error, Interrupted):
        return error.exit_status
    return 128 + (_received[-1] if _received else signal.SIGINT)


def _install(handler) -> dict[int, object]:
    """Install ``handler`` for SIGINT and SIGTERM (those not inherited as ignored); the previous handlers."""
    previous: dict[int, object] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    for sig in SIGNALS:
        old = signal.getsignal(sig)
        if old is signal.SIG_IGN:
            continue
        previous[sig] = old
        signal.signal(sig, handler)
    return previous


def _restore(previous: dict[int, object]) -> None:
    for sig, old in previous.items():
        signal.signal(sig, old if old is not None else signal.SIG_DFL)


@contextlib.contextmanager
def stop_at_once() -> Iterator[None]:
    """Within: SIGINT and SIGTERM raise :class:`Interrupted` where the main thread is."""

    def handler(signum: int, frame: FrameType | None) -> None:
        _received.append(signum)
        raise Interrupted(signum)

    previous = _install(handler)
    try:
        yield
    finally:
        _restore(previous)


class StopRequest:
    """What :func:`stop_after_step` yields: ``signum`` of the first signal received, or None."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        _received.append(signum)
        if self.signum is not None:  # the second signal: the user does not want to wait for the checkpoint
            raise Interrupted(signum, f"interrupted again by {_name(signum)}: stopped at once; the last complete "
                              "checkpoint is kept (one being written was finished or discarded whole), so "
                              "`latentprior resume` continues from it")
        self.signum = signum


@contextlib.contextmanager
def stop_after_step() -> Iterator[StopRequest]:
    """Within: the first SIGINT or SIGTERM is recorded in the yielded :class:`StopRequest` for the caller to act
    on at a safe point; a second one raises :class:`Interrupted` at once."""
    request = StopRequest()
    previous = _install(request.handle)
    try:
        yield request
    finally:
        _restore(previous)
