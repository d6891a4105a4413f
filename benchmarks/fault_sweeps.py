"""Sweep fault kinds of `python -m benchmarks.faults`: the sweep driver killed and restarted, a trial that raises, and a
Ray worker killed mid-trial.

The first two drive ``latentprior sweep FILE --out DIR --local`` on a tiny digits sweep (a few steps per run, NLL
on 50 test images), so a whole sweep is a few seconds; the worker kill runs the same sweep, with longer runs, on
the local Ray cluster the driver starts. Each trial returns outcomes ``(survived, steps lost beyond the
checkpoint interval, finished bytes lost, note)`` like the other kinds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import signal
import subprocess
from pathlib import Path

from benchmarks.fault_tools import checkpoint_state, cli, cli_popen, losses, wait_for

__all__ = ["SWEEP_KINDS", "sweep_driver_kill", "sweep_trial_raises", "sweep_worker_kill"]

Outcome = tuple[bool, int, int, str]
_CHECKPOINT_EVERY = 2

# Six steps of digits per run (0.4 of a 15-step epoch), a checkpoint every 2 steps, one log line per step.
_BASE = {"data": {"name": "digits"}, "net": {"width": 0.0625},
         "prior": {"kind": "realnvp", "layers": 2, "hidden": 16}, "model": {"latent_dim": 4},
         "objective": {"kind": "vae", "lr": 1.0e-3},
         "train": {"epochs": 0.4, "prior_epochs": 0, "batch_size": 100, "log_every": 1,
                   "checkpoint_every": _CHECKPOINT_EVERY, "progress": False, "threads": 1}}
_EVAL = {"metrics": ["nll"], "n": 50, "nll_k": 4}


def _sweep_file(folder: Path, base: dict | None = None, max_concurrent: int = 1, **blocks) -> Path:
    """A sweep file in ``folder`` (JSON is YAML) on ``base`` (default: the tiny digits base)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sweep.yaml"
    path.write_text(json.dumps({"name": "tiny", "base": base or _BASE, "eval": _EVAL,
                                "resources": {"threads": 1, "max_concurrent": max_concurrent}, **blocks}))
    return path


def _finished(out: Path) -> dict[str, dict[str, str]]:
    """Run name -> {relative path: SHA-256} of every done run's eval files, checkpoints and metrics.jsonl; a run
    is done when each eval file of the sweep is there and parses (a file cut short is not a finished result)."""
    done = {}
    for run in sorted((out / "runs").glob("*")) if (out / "runs").is_dir() else []:
        evals = [run / "eval" / f"{m}.json" for m in _EVAL["metrics"]]
        try:
            [json.loads(p.read_text()) for p in evals]
        except (OSError, ValueError):
            continue
        files = [*evals, *sorted((run / "checkpoints").glob("*")), run / "metrics.jsonl"]
        done[run.name] = {str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    return done


def _bytes_lost(out: Path, before: dict[str, dict[str, str]]) -> int:
    """Bytes of ``before``'s files that are gone or changed now."""
    lost = 0
    for name, files in before.items():
        for rel, digest in files.items():
            path = out / "runs" / name / rel
            now = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None
            lost += 0 if now == digest else max(len(digest), path.stat().st_size if path.exists() else 0)
    return lost


def _summary(stdout: str) -> dict:
    for line in reversed(stdout.strip().splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return {}


def sweep_driver_kill(work: Path, i: int, rng: random.Random, ref=None, runs: int = 3,
                      max_delay: float = 1.0) -> list[Outcome]:
    """SIGKILL the sweep driver at a random moment after its first run finished, then rerun the same command:
    every run done, the runs finished before the kill byte-identical and not retrained (skipped).
    ``max_delay``: the kill comes up to this many seconds after the first run finished."""
    sweep, out = _sweep_file(work, grid={"objective.beta": [round(b / runs, 3) for b in range(runs)]}), work / "out"
    args = ["sweep", str(sweep), "--out", str(out), "--local", "--no-progress"]
    proc = cli_popen(args)
    wait_for(lambda: bool(_finished(out)) or proc.poll() is not None, timeout=300, poll=0.005)
    wait_for(lambda: proc.poll() is not None, timeout=rng.uniform(0, max_delay), poll=0.005)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    before = _finished(out)
    # steps logged past the last complete checkpoint of the run the kill interrupted, beyond one interval
    beyond = 0
    for run in (out / "runs").glob("*") if (out / "runs").is_dir() else []:
        if run.name not in before:
            step, _, _ = checkpoint_state(run)
            beyond = max(beyond, max(losses(run), default=0) - (step or 0) - _CHECKPOINT_EVERY)
    res = cli(args, timeout=300)
    after, summary = _finished(out), _summary(res.stdout)
    lost = _bytes_lost(out, before)
    problems = [f"rc {res.rc}: {res.stderr.strip()[-150:]}"] if res.rc != 0 else []
    if len(after) != runs:
        problems.append(f"{len(after)} of {runs} runs done")
    if summary.get("skipped") != len(before):
        problems.append(f"skipped {summary.get('skipped')}, {len(before)} were done before the kill")
    if lost:
        problems.append(f"{lost} finished bytes changed")
    when = f"killed with {len(before)}/{runs} runs done" if killed else "ended before the kill"
    return [(not problems, max(beyond, 0), lost, "; ".join([when, *problems]))]


def sweep_trial_raises(work: Path, i: int, rng: random.Random, ref=None) -> list[Outcome]:
    """One model's data folder does not exist (the sweep's checks before the start let that through: the trial
    raises when it loads its data). The other runs finish, the sweep exits 1 naming the failed run, and the
    failure, a user error that would recur, is attempted once although ``retries`` allows more."""
    bad = "mnist-missing_data"
    models = {"a": {"objective.beta": 0}, "b": {"objective.beta": 1},
              "missing_data": {"data.name": "mnist", "data.dir": str(work / "no-such-folder")}}
    models = dict(rng.sample(sorted(models.items()), len(models)))  # the failing run at any position
    sweep, out = _sweep_file(work, models=models, retries=2), work / "out"
    res = cli(["sweep", str(sweep), "--out", str(out), "--local", "--no-progress"], timeout=300)
    last = res.stderr.strip().splitlines()[-1:] or [""]
    state = json.loads((out / "sweep.json").read_text()) if (out / "sweep.json").exists() else {"runs": {}}
    attempts = state["runs"].get(bad, {}).get("attempts")
    problems = [] if res.rc == 1 else [f"rc {res.rc}"]
    if not (last[0].startswith("error: 1 of 3 runs failed: ") and bad in last[0]):
        problems.append(f"last stderr line {last[0][-150:]!r}")
    if sorted(_finished(out)) != ["digits-a", "digits-b"]:
        problems.append(f"done runs {sorted(_finished(out))}")
    if attempts != 1:
        problems.append(f"the failed run was attempted {attempts} times")
    return [(not problems, 0, 0, "; ".join(problems))]


# ------------------------------------------------------------------------------------- Ray worker killed

# Two epochs (30 steps of 0.1-0.2 s): long enough to land a kill mid-training, short enough for a few-second trial.
_LONG = {**_BASE, "train": {**_BASE["train"], "epochs": 2}}
_LONG_STEPS = 30


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children lists of all its threads, recursively); gone processes drop out."""
    found, todo = set(), [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            try:
                kids = {int(k) for k in (task / "children").read_text().split()}
            except (OSError, ValueError):
                continue
            todo.extend(kids - found)
            found |= kids
    return found


def _running(pid: int) -> bool:
    """Whether ``pid`` is a process that has not died (a zombie waiting to be reaped has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _ray_worker(driver: int, run: Path) -> int | None:
    """The pid of the Ray worker training ``run``: the last pid its trial.log names, if that process is a
    ``ray::`` worker below our own ``driver`` (never a process of another Ray cluster on this machine)."""
    try:
        pids = re.findall(r"^== trial \S+ on \S+ pid (\d+) ", (run / "trial.log").read_text(), re.M)
        pid = int(pids[-1])
        title = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError, ValueError):
        return None
    return pid if title.startswith(b"ray::") and pid in _descendants(driver) else None


def _stop_tree(proc: subprocess.Popen) -> None:
    """SIGKILL a hung driver's descendants (the Ray cluster it started, which would outlive it), then the driver."""
    for pid in sorted(_descendants(proc.pid), reverse=True):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    proc.kill()


def sweep_worker_kill(work: Path, i: int, rng: random.Random, ref=None, runs: int = 2,
                      max_concurrent: int | None = None) -> list[Outcome]:
    """SIGKILL the Ray worker of one run while it trains (after a random 1-26 of its 30 steps are logged) in a
    sweep on a local Ray cluster (no ``--local``) with ``retries: 1``. The driver records the failed attempt and
    retries it; every run finishes with the losses and NLL of its twins (the runs share one config), the runs
    finished before the kill are byte-identical, the sweep exits 0, and ``sweep.json`` counts 2 attempts for the
    killed run and 1 for the others. Steps lost: those logged at the kill and trained again by the retry.

    ``max_concurrent``: 1 (the last run is killed, after the others finished) or 2 (a random one, while another
    trains beside it); by default it alternates with ``i``."""
    cap = max_concurrent or 1 + i % 2
    names = [f"digits-{chr(97 + r)}" for r in range(runs)]
    models = {n.split("-")[1]: {} for n in names}
    sweep, out = _sweep_file(work, base=_LONG, max_concurrent=cap, models=models, retries=1), work / "out"
    target = names[-1] if cap == 1 else rng.choice(names)
    run, step = out / "runs" / target, rng.randint(1, _LONG_STEPS - 4)
    proc = cli_popen(["sweep", str(sweep), "--out", str(out), "--no-progress"])
    worker = None

    def ready() -> bool:
        nonlocal worker
        worker = _ray_worker(proc.pid, run) if max(losses(run), default=0) >= step else None
        return worker is not None or proc.poll() is not None

    wait_for(ready, timeout=300, poll=0.005)
    logged, before = 0, {}
    if worker is not None and proc.poll() is None:
        before = _finished(out)
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: not _running(worker), timeout=30, poll=0.005)
        logged = max(losses(run), default=0)
    try:
        _, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        _stop_tree(proc)
        _, stderr = proc.communicate()
        stderr += "\n[harness: killed after 300 s]"
    state = json.loads((out / "sweep.json").read_text()) if (out / "sweep.json").exists() else {"runs": {}}
    recs = state["runs"]
    attempts = {n: recs.get(n, {}).get("attempts") for n in names}
    result = recs.get(target, {}).get("result") or {}
    resumed = (result.get("steps") or 0) - (result.get("steps_this_session") or 0)
    after, lost = _finished(out), _bytes_lost(out, before)
    problems = [f"rc {proc.returncode}: {stderr.strip()[-150:]}"] if proc.returncode != 0 else []
    if not logged:
        problems.append(f"no worker killed (the sweep ended first, rc {proc.returncode})")
    if sorted(after) != names:
        problems.append(f"done runs {sorted(after)}")
    if attempts != {n: 2 if n == target else 1 for n in names}:
        problems.append(f"attempts {attempts}")
    if lost:
        problems.append(f"{lost} finished bytes changed")
    want = [losses(out / "runs" / n) for n in names if n != target]
    if len(after) == runs and any(losses(run) != w for w in want):
        problems.append("the retried run's losses differ from its twins'")
    nll = {json.loads((out / "runs" / n / "eval" / "nll.json").read_text()).get("value") for n in after}
    if len(nll) > 1:
        problems.append(f"NLL differs between twins: {sorted(nll)}")
    note = (f"worker killed at step {logged} of {target} (max_concurrent {cap}); retry resumed at step {resumed}, "
            f"attempts {attempts.get(target)}")
    return [(not problems, max(0, logged - resumed - _CHECKPOINT_EVERY) if logged else 0, lost,
             "; ".join([note, *problems]))]


SWEEP_KINDS = {"sweep_driver_kill": sweep_driver_kill, "sweep_trial_raises": sweep_trial_raises,
               "sweep_worker_kill": sweep_worker_kill}
