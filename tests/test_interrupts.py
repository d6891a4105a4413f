"""latentprior.interrupts: the first SIGINT/SIGTERM is a request the training loop acts on at a step's end, a second
one (or any, outside training) stops at once; exit statuses 130/143; signals inherited as ignored stay ignored."""

from __future__ import annotations

import os
import pickle
import signal
import threading

import pytest

from latentprior.interrupts import Interrupted, TrainingInterrupted, stop_after_step, stop_at_once


@pytest.fixture(autouse=True)
def _sigint_not_ignored():
    """Every test starts with Python's own SIGINT handler: a test run started with SIGINT ignored (under nohup, or
    with & from a script) would otherwise test the inherited-ignore rule instead of the one the test names."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_stop_at_once_raises_where_the_main_thread_is(sig, status):
    before = signal.getsignal(sig)
    with pytest.raises(Interrupted) as e, stop_at_once():
        os.kill(os.getpid(), sig)
        for _ in range(10**7):  # the handler runs between bytecodes, here
            pass
    assert e.value.signum == sig and e.value.exit_status == status and isinstance(e.value, KeyboardInterrupt)
    assert "none was left half-written" in str(e.value) and "\n" not in str(e.value)
    assert signal.getsignal(sig) is before  # restored


def test_stop_after_step_records_the_first_signal_and_raises_on_the_second():
    with stop_after_step() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested and stop.signum == signal.SIGTERM  # a request, nothing raised
        with pytest.raises(Interrupted, match="interrupted again by SIGINT: stopped at once") as e:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10**7):
                pass
        assert e.value.exit_status == 130
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_the_training_loop_overrides_the_command_and_gives_it_back():
    with stop_at_once():
        outer = signal.getsignal(signal.SIGINT)
        with stop_after_step() as stop:
            os.kill(os.getpid(), signal.SIGINT)
            assert stop.signum == signal.SIGINT
        assert signal.getsignal(signal.SIGINT) is outer


def test_a_signal_inherited_as_ignored_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with stop_after_step() as stop:
            os.kill(os.getpid(), signal.SIGINT)
            assert not stop.requested
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_outside_the_main_thread_nothing_is_installed():
    seen = {}

    def other():
        with stop_after_step():
            seen["handler"] = signal.getsignal(signal.SIGTERM)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen["handler"] is signal.getsignal(signal.SIGTERM)


def test_the_messages_and_a_round_trip_through_pickle():
    e = TrainingInterrupted(signal.SIGTERM, 12, "/runs/a")
    assert str(e) == "interrupted at step 12; continue with: latentprior resume /runs/a" and e.exit_status == 143
    back = pickle.loads(pickle.dumps(e))  # a sweep's Ray worker sends it to the driver
    assert (type(back), str(back), back.step, back.signum) == (TrainingInterrupted, str(e), 12, signal.SIGTERM)
    assert pickle.loads(pickle.dumps(Interrupted(signal.SIGINT))).exit_status == 130
