"""Fault injection: kill -9 anywhere, full disks, read-only run directories, NaN/inf, two writers, hostile files,
sweep drivers killed, sweep trials that raise, Ray workers killed mid-trial, SIGTERM during a checkpoint write, and
hostile run directories (a sweep state escaping its folder, bad metrics lines, YAML tags in config.yaml, checkpoint
contents that do not fit), TensorBoard's writer thread and ``eval`` on a full disk.

    python -m benchmarks.faults            # reduced set (a few trials per kind, a few minutes on 2 cores)
    python -m benchmarks.faults --full     # >= 20 kill trials (VAE and AAE), 3 of every other kind

Every trial drives the ``latentprior`` command as a user would and prints one table: fault kind, trials,
survived, steps lost beyond the last checkpoint interval (max over trials), bytes of finished results lost
(must be 0). The last line is ``faults_survived=<survived>/<trials>``. A trial survives when the command either
continues (``resume`` from the last complete checkpoint, final losses equal to an uninterrupted run's, exactly)
or refuses with exit status 2 and one ``error:`` line naming the path, leaving every finished result intact.
A sweep survives when its runs finish as they would have uninterrupted: a transient failure (a Ray worker killed)
is retried as configured and resumes, a user error fails its run alone, and a rerun skips what is done.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.fault_kinds import KINDS, Reference

__all__ = ["Row", "run_kinds", "format_table", "main"]


@dataclass
class Row:
    """One fault kind's tally."""

    kind: str
    trials: int = 0
    survived: int = 0
    steps_lost_beyond: int = 0
    bytes_lost: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, ok: bool, steps_beyond: int = 0, bytes_lost: int = 0, note: str = "") -> None:
        self.trials += 1
        self.survived += int(ok)
        self.steps_lost_beyond = max(self.steps_lost_beyond, steps_beyond)
        self.bytes_lost += bytes_lost
        if note and not ok:
            self.notes.append(note)


def run_kinds(kinds: list[str], trials: dict[str, int], work: Path, seed: int = 0,
              log: Callable[[str], None] = print) -> list[Row]:
    """Run ``trials[kind]`` trials of each kind under ``work``; one Row per kind."""
    rng = random.Random(seed)
    ref = Reference(work / "reference")
    rows = []
    for kind in kinds:
        row = Row(kind)
        for i in range(trials[kind]):
            start = time.monotonic()
            for ok, beyond, lost, note in KINDS[kind](work / f"{kind}-{i}", i, rng, ref):
                row.add(ok, beyond, lost, note)
                log(f"  {kind} #{i}: {'survived' if ok else 'FAILED'} ({time.monotonic() - start:.0f} s) {note}")
        rows.append(row)
    return rows


def format_table(rows: list[Row]) -> str:
    head = ("fault kind", "trials", "survived", "steps lost beyond interval", "finished bytes lost", "notes")
    body = [(r.kind, str(r.trials), str(r.survived), str(r.steps_lost_beyond), str(r.bytes_lost),
             "; ".join(r.notes)[:110]) for r in rows]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(x, widths, strict=True)).rstrip() for x in [head, *body]]
    total, ok = sum(r.trials for r in rows), sum(r.survived for r in rows)
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:], f"faults_survived={ok}/{total}"])


REDUCED = {"kill_vae": 2, "kill_aae": 2, "disk_full_checkpoint": 1, "disk_full_eval": 1, "read_only": 1,
           "nan_batch": 1, "inf_parameter": 1, "inf_log_density": 1, "two_writers": 1, "hostile_files": 1,
           "sweep_driver_kill": 2, "sweep_trial_raises": 1, "sweep_worker_kill": 1,
           "report_traversal": 2, "bad_metrics_line": 2, "tb_disk_full": 2, "eval_disk_full_one_page": 2,
           "yaml_tag_config": 2, "malformed_payload": 2, "sigterm_mid_write": 2}
# --full: every malformed payload edit, traversal name and free-page count once at least, both tb_disk_full methods
FULL = {**{k: 3 for k in REDUCED}, "kill_vae": 12, "kill_aae": 12, "report_traversal": 7, "malformed_payload": 7,
        "tb_disk_full": 4, "sigterm_mid_write": 6, "bad_metrics_line": 4}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--full", action="store_true", help="the full set (>= 20 kill trials)")
    p.add_argument("--kinds", default=",".join(REDUCED), help=f"comma-separated subset of {','.join(KINDS)}")
    p.add_argument("--trials", type=int, help="trials per kind (overrides the reduced/full counts)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary folder)")
    args = p.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        p.error(f"unknown kinds {unknown}; known: {list(KINDS)}")
    counts = {k: args.trials or (FULL if args.full else REDUCED)[k] for k in kinds}
    work = args.keep or Path(tempfile.mkdtemp(prefix="latentprior-faults-"))
    try:
        rows = run_kinds(kinds, counts, work, args.seed)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(format_table(rows))
    return 0 if all(r.survived == r.trials for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
