"""The fault kinds of `python -m benchmarks.faults`. Each trial function takes (work dir, trial index, rng,
reference) and returns a list of outcomes ``(survived, steps lost beyond the checkpoint interval, finished bytes
lost, note)``.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.fault_hostile import hostile_files
from benchmarks.fault_rundir import RUNDIR_KINDS
from benchmarks.fault_sweeps import SWEEP_KINDS
from benchmarks.fault_tools import (
    CHECKPOINT_EVERY,
    CHILD,
    checkpoint_state,
    cli,
    cli_popen,
    fill,
    fsize_limit,
    losses,
    one_line_error,
    read_only,
    small_fs,
    tiny_config,
    wait_for,
)

__all__ = ["KINDS", "Outcome", "Reference"]

Outcome = tuple[bool, int, int, str]


class Reference:
    """Uninterrupted runs, trained once per model: their losses are what every recovered run must reproduce."""

    def __init__(self, folder: Path) -> None:
        self.folder, self._runs = folder, {}

    def config(self, model: str) -> Path:
        return tiny_config(self.folder, model)

    def run(self, model: str) -> tuple[Path, dict[int, dict[str, float]], float]:
        """(run dir, losses by step, seconds from its first checkpoint to its end)."""
        if model not in self._runs:
            run = self.folder / f"run_{model}"
            proc = cli_popen(["train", str(self.config(model)), "--out", str(run)])
            wait_for(lambda: (run / "checkpoints" / "latest.json").exists() or proc.poll() is not None, poll=0.005)
            start = time.monotonic()
            _, err = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"the uninterrupted {model} run failed: {err[-500:]}")
            self._runs[model] = (run, losses(run), time.monotonic() - start)
        return self._runs[model]


def _lost_bytes(run: Path, want: dict[int, dict[str, float]]) -> tuple[int | None, int]:
    """(step of the last complete checkpoint, bytes of finished results lost): a checkpoint whose hash no
    longer matches, and logged losses at or before that checkpoint that are gone or changed."""
    step, intact, size = checkpoint_state(run)
    lost = 0 if intact else size
    got = losses(run)
    lost += sum(len(repr(want[s])) for s in want if step is not None and s <= step and got.get(s) != want[s])
    return step, lost


def _recovered(run: Path, want: dict[int, dict[str, float]]) -> tuple[bool, str]:
    res = cli(["resume", str(run)])
    if res.rc != 0:
        return False, f"resume failed: {res.stderr.strip()[-150:]}"
    return (True, "") if losses(run) == want else (False, "resumed losses differ from the uninterrupted run")


# ------------------------------------------------------------------------------------------------ kill -9

KILL_MODES = ("random", "checkpoint_write", "prior_phase")


def _kill_moment(mode: str, run: Path, proc, rng: random.Random, seconds: float) -> None:
    ck = run / "checkpoints"
    if mode == "random":
        time.sleep(rng.uniform(0, seconds))
    elif mode == "checkpoint_write":
        skip, seen = rng.randrange(4), set()

        def writing() -> bool:  # an atomic writer's temporary file is there: a checkpoint is being written
            names = {n for n in os.listdir(ck) if n.endswith(".part") and n.startswith(".step_")}
            seen.update(names)
            return (len(seen) > skip and bool(names)) or proc.poll() is not None

        wait_for(writing, poll=0.0002)
    else:
        metrics = run / "metrics.jsonl"
        wait_for(lambda: '"phase": "prior"' in metrics.read_text() or proc.poll() is not None, poll=0.005)
        time.sleep(rng.uniform(0, 0.3))


def kill_trial(model: str) -> Callable[..., list[Outcome]]:
    def trial(work: Path, i: int, rng: random.Random, ref: Reference) -> list[Outcome]:
        _, want, seconds = ref.run(model)
        mode, run = KILL_MODES[i % len(KILL_MODES)], work / "run"
        proc = cli_popen(["train", str(ref.config(model)), "--out", str(run)])
        wait_for(lambda: (run / "checkpoints" / "latest.json").exists() or proc.poll() is not None, poll=0.005)
        _kill_moment(mode, run, proc, rng, seconds)
        killed = proc.poll() is None
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        mid_write = any(n.endswith(".part") for n in os.listdir(run / "checkpoints"))
        logged = max(losses(run), default=0)
        step, lost = _lost_bytes(run, want)
        ok, why = _recovered(run, want)
        note = f"{mode}{' mid-write' if mid_write else ''}{'' if killed else ' (ended before the kill)'} {why}"
        return [(ok, max(0, logged - (step or 0) - CHECKPOINT_EVERY), lost, note.strip())]

    return trial


# ------------------------------------------------------------------------------------- SIGTERM mid-write

_STOPPED = re.compile(r"interrupted at step (\d+); continue with: latentprior resume (.+)")


def sigterm_mid_write(work: Path, i: int, rng: random.Random, ref: Reference) -> list[Outcome]:
    """SIGTERM while a checkpoint is being written (its temporary file is there; odd trials send a second one
    straight after): the write completes or is discarded whole, the command exits 143 and its last line says
    ``interrupted at step N; continue with: latentprior resume RUN`` with a verified checkpoint of step N (after a
    second signal: the last complete checkpoint, ``interrupted again``), and the run resumes exactly."""
    model = ("vae", "aae")[i // 2 % 2]  # trials 0, 1: vae once and twice; 2, 3: aae; ...
    _, want, _ = ref.run(model)
    run = work / "run"
    proc = cli_popen(["train", str(ref.config(model)), "--out", str(run)])
    wait_for(lambda: (run / "checkpoints").is_dir() or proc.poll() is not None, poll=0.002)
    _kill_moment("checkpoint_write", run, proc, rng, 0)
    sent = proc.poll() is None
    if sent:
        proc.send_signal(signal.SIGTERM)
        if i % 2:
            proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate()
    last = (err.strip().splitlines() or [""])[-1]
    m = _STOPPED.fullmatch(last)
    step, intact, _ = checkpoint_state(run)
    logged = max(losses(run), default=0)
    if i % 2 and last.startswith("interrupted again by SIGTERM: stopped at once"):
        stopped = proc.returncode == 143 and intact  # the write in flight was dropped whole, or completed
    else:
        stopped = (proc.returncode == 143 and m is not None and m.group(2) == str(run) and intact
                   and step == int(m.group(1)) == logged)
    partial = any(n.endswith(".part") for n in os.listdir(run / "checkpoints"))
    stopped = stopped and "Traceback" not in err and not partial
    _, lost = _lost_bytes(run, want)
    ok, why = _recovered(run, want)
    note = (f"{model}{' twice' if i % 2 else ''}" + ("" if sent else " (ended before the signal)")
            + ("" if stopped else f"; rc {proc.returncode}, last line {last[-140:]!r}"))
    return [(sent and stopped and ok, max(0, logged - (step or 0) - CHECKPOINT_EVERY), lost, f"{note} {why}".strip())]


# ----------------------------------------------------------------------------------- disk full, read-only


def _partial_run(fs: Path, ref: Reference) -> tuple[Path, tuple]:
    run = fs / "run"
    res = cli(["train", str(ref.config("vae")), "--out", str(run), "--max-steps", str(2 * CHECKPOINT_EVERY)])
    if res.rc != 0:
        raise RuntimeError(f"setup run failed: {res.stderr[-300:]}")
    return run, checkpoint_state(run)


def disk_full_checkpoint(work: Path, i: int, rng: random.Random, ref: Reference) -> list[Outcome]:
    _, want, _ = ref.run("vae")
    with small_fs(work / "fs", 64) as (fs, method):
        run, before = _partial_run(fs, ref)
        if method == "tmpfs":
            fill(fs, before[2] // 2)  # room for the logs, not for the next checkpoint
            res = cli(["resume", str(run)])
        else:
            res = cli(["resume", str(run)], preexec=fsize_limit(before[2] // 2))
        refused = one_line_error(res, str(run))
        intact = checkpoint_state(run) == before
        (fs / "filler").unlink(missing_ok=True)
        ok, why = _recovered(run, want)
    note = f"{method}" + ("" if refused else f"; not one line naming the path: {res.stderr.strip()[-160:]!r}")
    return [(refused and intact and ok, 0, 0 if intact else before[2], f"{note} {why}".strip())]


def disk_full_eval(work: Path, i: int, rng: random.Random, ref: Reference) -> list[Outcome]:
    src, _, _ = ref.run("vae")
    evaluate = ["eval", "--metrics", "nll", "--nll-k", "2", "--batch-size", "10"]
    with small_fs(work / "fs", 64) as (fs, method):
        run = fs / "run"
        shutil.copytree(src, run)
        first = cli([evaluate[0], str(run), *evaluate[1:], "--n", "10"])
        done = (run / "eval" / "nll.json").read_bytes() if first.rc == 0 else b""
        if method == "tmpfs":
            fill(fs, 0)
            res = cli([evaluate[0], str(run), *evaluate[1:], "--n", "12"])
        else:
            res = cli([evaluate[0], str(run), *evaluate[1:], "--n", "12"], preexec=fsize_limit(0))
        refused = one_line_error(res, str(run))
        kept = bool(done) and (run / "eval" / "nll.json").read_bytes() == done
    note = f"{method}" + ("" if refused else f"; not one line naming the path: {res.stderr.strip()[-160:]!r}")
    return [(refused and kept, 0, 0 if kept else len(done) or 1, note)]


def read_only_run(work: Path, i: int, rng: random.Random, ref: Reference,
                  commands: tuple[str, ...] = ("resume", "eval"), recover: bool = True) -> list[Outcome]:
    """``resume`` and ``eval`` on a run whose file system went read-only: refused in one line naming the run,
    the checkpoint untouched; with ``recover``, ``resume`` completes once it is writable again."""
    _, want, _ = ref.run("vae")
    out: list[Outcome] = []
    with small_fs(work / "fs", 64) as (fs, method):
        run, before = _partial_run(fs, ref)
        if method != "tmpfs" or not read_only(fs, True):
            return [(False, 0, 0, "skipped: cannot mount read-only here (needs root)")]
        argv = {"resume": ["resume", str(run)],
                "eval": ["eval", str(run), "--metrics", "nll", "--n", "10", "--nll-k", "2"]}
        for name in commands:
            res = cli(argv[name])
            refused, intact = one_line_error(res, str(run)), checkpoint_state(run) == before
            why = "" if refused else f"not one line naming the path: {res.stderr.strip()[-160:]!r}"
            out.append((refused and intact, 0, 0 if intact else before[2], f"{name} {why}".strip()))
        read_only(fs, False)
        if recover:
            ok, why = _recovered(run, want)
            out.append((ok, 0, 0, f"resume once writable {why}".strip()))
    return out


# -------------------------------------------------------------------------------------------- NaN and inf


def numeric_trial(fault: str, models: tuple[str, ...], per_step: int) -> Callable[..., list[Outcome]]:
    """``per_step``: how many events of this kind a step has (at most), so the fault lands after the first
    checkpoint: a run stopped before any checkpoint has nothing to resume from, only to start again.
    A trial's ``k`` (the event that is poisoned) is drawn from ``rng`` unless given."""

    def trial(work: Path, i: int, rng: random.Random, ref: Reference, k: int | None = None) -> list[Outcome]:
        model = models[i % len(models)]
        _, want, _ = ref.run(model)
        run, mark = work / "run", work / "fired"
        k = k if k is not None else rng.randint(per_step * (CHECKPOINT_EVERY + 1), per_step * 24)
        env = {"LATENTPRIOR_FAULT": f"{fault}:{k}", "LATENTPRIOR_FAULT_MARK": str(mark)}
        res = cli(["train", str(ref.config(model)), "--out", str(run)], command=CHILD, env=env)
        at = re.search(r"step (\d+)", res.stderr)
        stopped = mark.exists() and one_line_error(res, "non-finite", "update") and at is not None
        step, lost = _lost_bytes(run, want)
        ok, why = _recovered(run, want)
        beyond = max(0, int(at.group(1)) - (step or 0) - CHECKPOINT_EVERY) if at else 0
        note = f"{model} {fault}:{k}" + ("" if stopped else f" did not stop cleanly: {res.stderr.strip()[-160:]!r}")
        return [(stopped and ok and lost == 0, beyond, lost, f"{note} {why}".strip())]

    return trial


# --------------------------------------------------------------------------------------------- two writers


WRITERS = ("resume", "train-prior", "train")


def two_writers(work: Path, i: int, rng: random.Random, ref: Reference, commands: tuple[str, ...] = WRITERS,
                timeout: float = 30) -> list[Outcome]:
    """A second writer on a run another live process is training: refused at once, naming that process."""
    cfg, run = ref.config("vae"), work / "run"
    second = {"resume": ["resume", str(run)], "train-prior": ["train-prior", str(run), "--epochs", "1"],
              "train": ["train", str(cfg), "--out", str(run)]}
    first = cli_popen(["train", str(cfg), "--out", str(run), "--set", "train.epochs=200"])
    out: list[Outcome] = []
    try:
        wait_for(lambda: (run / "checkpoints" / "latest.json").exists() or first.poll() is not None)
        for args in (second[c] for c in commands):
            res = cli(args, timeout=timeout)  # a refusal is immediate; a second writer would still be running
            ok = one_line_error(res, f"pid {first.pid}") and first.poll() is None
            out.append((ok, 0, 0, f"{args[0]}" + ("" if ok else f": {res.stderr.strip()[-140:]!r}")))
    finally:
        first.kill()
        first.communicate()
    return out


KINDS: dict[str, Callable[..., list[Outcome]]] = {
    "kill_vae": kill_trial("vae"),
    "kill_aae": kill_trial("aae"),
    "disk_full_checkpoint": disk_full_checkpoint,
    "disk_full_eval": disk_full_eval,
    "read_only": read_only_run,
    "nan_batch": numeric_trial("batch", ("vae", "aae"), 1),
    "inf_parameter": numeric_trial("param", ("vae", "aae"), 3),
    "inf_log_density": numeric_trial("logdensity", ("vae",), 2),
    "two_writers": two_writers,
    "hostile_files": hostile_files,
    "sigterm_mid_write": sigterm_mid_write,
    **RUNDIR_KINDS,
    **SWEEP_KINDS,
}
