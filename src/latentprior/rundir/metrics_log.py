"""``RUN_DIR/metrics.jsonl``: one JSON object per logged step, appended line by line — its one reader and one writer.

A record is a JSON object with an integer ``step`` (>= 0) and any other fields (losses, ``phase``, learning rates).
The file is appended to, so a crash or a full disk can cut only its last line; a hand edit can put anything
anywhere. Every reader goes through :func:`read_metrics`, which keeps the valid records and counts the rest
(half a record, text, ``null``, a list, a record without a valid step, invalid UTF-8), so one bad line never makes
a run unreadable. Resuming truncates the log to the resumed step with :meth:`MetricsWriter.open` without parsing
what it drops: steps only grow, so everything from the first record past the resumed step on goes.

Imports neither torch nor the training loop: reports read logs cheaply.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latentprior.atomic import atomic_write_bytes, writing
from latentprior.rundir.layout import RunDir, run_dir_of

__all__ = ["MetricsLog", "MetricsWriter", "read_metrics", "parse_record"]

log = logging.getLogger(__name__)

_MAX_STEP = 10**15  # a larger "step" is not a step this library wrote (and Python ints have no overflow to stop it)


def parse_record(line: bytes | str) -> dict[str, Any] | None:
    """The record of one line, or None when the line is not a valid record (see the module docstring)."""
    try:
        text = line.decode("utf-8") if isinstance(line, bytes) else line
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):  # JSONDecodeError is a ValueError
        return None
    step = data.get("step") if isinstance(data, dict) else None
    if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step <= _MAX_STEP:
        return None
    return data


@dataclass
class MetricsLog:
    """The valid records of a log, in file order, and how many lines were not valid records."""

    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    skipped_lines: list[int] = field(default_factory=list)  # 1-based line numbers, the first few

    def notice(self, path: Path) -> str:
        lines = ", ".join(map(str, self.skipped_lines)) + (", ..." if self.skipped > len(self.skipped_lines) else "")
        return f"{path}: skipped {self.skipped} line(s) that are not metric records (line {lines})"


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines() if path.is_file() else []


def read_log(run_dir: str | os.PathLike[str] | RunDir) -> MetricsLog:
    """Every valid record of ``RUN_DIR/metrics.jsonl`` (none when the file is absent), with the skipped count."""
    out = MetricsLog()
    for number, line in enumerate(_lines(run_dir_of(run_dir).metrics), start=1):
        if not line.strip():
            continue
        record = parse_record(line)
        if record is None:
            out.skipped += 1
            if len(out.skipped_lines) < 5:
                out.skipped_lines.append(number)
        else:
            out.records.append(record)
    return out


def read_metrics(run_dir: str | os.PathLike[str] | RunDir) -> list[dict[str, Any]]:
    """The valid records of ``RUN_DIR/metrics.jsonl`` in order; [] when there is none. Lines that are not records
    are skipped (logged once per call at INFO level: reports call this for every run)."""
    result = read_log(run_dir)
    if result.skipped:
        log.info(result.notice(run_dir_of(run_dir).metrics))
    return result.records


class MetricsWriter:
    """Appends records to ``RUN_DIR/metrics.jsonl``, one line each, flushed as written."""

    def __init__(self, run_dir: str | os.PathLike[str] | RunDir, resume_step: int = 0) -> None:
        """Open the log for appending after truncating it to ``resume_step`` (see :meth:`truncate`)."""
        self.path = run_dir_of(run_dir).metrics
        self.truncate(resume_step)
        with writing(self.path):
            self._fh = self.path.open("ab")

    def truncate(self, resume_step: int) -> None:
        """Keep the valid records with step <= ``resume_step`` and drop everything from the first record past it
        on, unparsed (an interrupted attempt's tail). Invalid lines before it are dropped with a logged notice.
        An atomic rewrite, done only when something changes."""
        lines = _lines(self.path)
        kept, bad, changed = [], [], False
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                changed = True
                continue
            record = parse_record(line)
            if record is None:
                bad.append(number)
                changed = True
            elif record["step"] > resume_step:
                changed = True
                break
            else:
                kept.append(line)
        if bad:
            log.warning(MetricsLog(skipped=len(bad), skipped_lines=bad[:5]).notice(self.path)
                        + "; dropped while resuming")
        if changed or (lines and not self.path.read_bytes().endswith(b"\n")):
            atomic_write_bytes(self.path, b"".join(line + b"\n" for line in kept))

    def write(self, step: int, values: dict[str, Any]) -> None:
        record = {"step": int(step), **values}
        with writing(self.path):
            self._fh.write((json.dumps(record) + "\n").encode())
            self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    @property
    def closed(self) -> bool:
        return self._fh.closed
