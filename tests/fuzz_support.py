"""Helpers for the fuzz tests: the example budget, damaged-bytes strategies and the "clean outcome" check.

Every hostile input must end in a correct result or in one :class:`~latentprior.errors.UserError` whose message
is one line, within a time and a traced-memory bound: no traceback, no hang, no allocation a header merely
claimed. The budget per target is ``examples(n)``: ``n`` in CI, ``n * LATENTPRIOR_FUZZ_SCALE`` for a full run
(``LATENTPRIOR_FUZZ_SCALE=50 pytest tests/test_fuzz.py``).
"""

from __future__ import annotations

import os
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from latentprior.config import Config, config_to_dict
from latentprior.errors import UserError

__all__ = ["FUZZ_SCALE", "Outcome", "damaged", "fuzz", "outcome", "SECTIONS", "VALID_CONFIG", "SCALARS", "VALUES",
           "KEYS"]

FUZZ_SCALE = max(1, int(os.environ.get("LATENTPRIOR_FUZZ_SCALE", "1")))


def fuzz(n: int) -> settings:
    """``n`` examples in CI (scaled for a full run); no deadline (the check below bounds time per call) and no
    example database, so a run leaves nothing behind in the working tree."""
    return settings(
        max_examples=n * FUZZ_SCALE,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


def _flip(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for pos, value in edits:
        out[pos % len(out)] = value
    return bytes(out)


def damaged(valid: bytes, *, header: int = 64) -> st.SearchStrategy[bytes]:
    """Random bytes, ``valid`` truncated, padded, with bytes overwritten anywhere or in its first ``header``."""
    n = max(len(valid), 1)
    edits = st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 255)), min_size=1, max_size=8)
    head_edits = st.lists(st.tuples(st.integers(0, min(header, n) - 1), st.integers(0, 255)), min_size=1, max_size=4)
    return st.one_of(
        st.binary(max_size=512),
        st.integers(0, len(valid) - 1).map(lambda k: valid[:k]),
        st.binary(min_size=1, max_size=256).map(lambda extra: valid + extra),
        edits.map(lambda e: _flip(valid, e)),
        head_edits.map(lambda e: _flip(valid, e)),
    )


class Outcome:
    """What a call under test did: ``value`` when it returned, ``error`` (a UserError) when it refused."""

    def __init__(self, value: Any, error: UserError | None, peak_bytes: int, seconds: float) -> None:
        self.value, self.error, self.peak_bytes, self.seconds = value, error, peak_bytes, seconds


def outcome(call: Callable[[], Any], *, max_bytes: int = 64 << 20, max_seconds: float = 10.0) -> Outcome:
    """Run ``call``; any exception other than a one-line UserError propagates (and fails the test).

    tracemalloc sees numpy's and Python's allocations, including ones the OS would only commit lazily, so a
    reader that trusts a forged size shows up here even when the machine would not run out of memory.
    """
    tracemalloc.start()
    start = time.monotonic()
    value, error = None, None
    try:
        value = call()
    except UserError as err:
        error = err
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    seconds = time.monotonic() - start
    if error is not None:
        msg = str(error)
        assert msg.strip() and "\n" not in msg, f"{type(error).__name__} is not one line: {msg!r}"
    assert peak <= max_bytes, f"peak traced memory {peak} bytes > {max_bytes}"
    assert seconds <= max_seconds, f"took {seconds:.1f} s > {max_seconds} s"
    return Outcome(value, error, peak, seconds)


# Config data for the config and sweep fuzzers: every section's keys, a valid file, and values of every kind.
SECTIONS = {k: list(v) for k, v in config_to_dict(Config()).items()}


VALID_CONFIG = yaml.safe_dump(config_to_dict(Config()), sort_keys=False).encode()


SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=12),
    st.sampled_from(["auto", "vae", "aae", "realnvp", "adversarial", "normal", "gaussian", "bf16", "cpu", "mnist"]),
)


VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                          max_size=3), max_leaves=8)


KEYS = st.sampled_from([f"{s}.{k}" for s, keys in SECTIONS.items() for k in keys]) | st.text(max_size=12)
