"""Sweep fault kinds of benchmarks/faults.py: the sweep driver killed and restarted, and a trial that raises.

Both drive ``latentprior sweep FILE --out DIR --local`` on a tiny digits sweep (a few steps per run, NLL on 50
test images), so a whole sweep is a few seconds. Each trial returns outcomes ``(survived, steps lost beyond the
checkpoint interval, finished bytes lost, note)`` like the other kinds.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
from pathlib import Path

from fault_tools import checkpoint_state, cli, cli_popen, losses, wait_for

__all__ = ["SWEEP_KINDS", "sweep_driver_kill", "sweep_trial_raises"]

Outcome = tuple[bool, int, int, str]
_CHECKPOINT_EVERY = 2

# Six steps of digits per run (0.4 of a 15-step epoch), a checkpoint every 2 steps, one log line per step.
_BASE = {"data": {"name": "digits"}, "net": {"width": 0.0625},
         "prior": {"kind": "realnvp", "layers": 2, "hidden": 16}, "model": {"latent_dim": 4},
         "objective": {"kind": "vae", "lr": 1.0e-3},
         "train": {"epochs": 0.4, "prior_epochs": 0, "batch_size": 100, "log_every": 1,
                   "checkpoint_every": _CHECKPOINT_EVERY, "progress": False, "threads": 1}}
_EVAL = {"metrics": ["nll"], "n": 50, "nll_k": 4}


def _sweep_file(folder: Path, **blocks) -> Path:
    """A sweep file in ``folder`` (JSON is YAML) on the tiny digits base."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sweep.yaml"
    path.write_text(json.dumps({"name": "tiny", "base": _BASE, "eval": _EVAL,
                                "resources": {"threads": 1, "max_concurrent": 1}, **blocks}))
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


SWEEP_KINDS = {"sweep_driver_kill": sweep_driver_kill, "sweep_trial_raises": sweep_trial_raises}
