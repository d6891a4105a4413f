"""Fault kinds of `python -m benchmarks.faults` on what a run directory holds and where it is written: a sweep state
naming a path outside the sweep, a bad line in metrics.jsonl, a YAML tag in config.yaml, a checkpoint whose hash
verifies but whose contents do not fit, TensorBoard's writer thread meeting a full disk, and ``eval``
on a disk with a page free.

Each trial returns outcomes ``(survived, steps lost beyond the checkpoint interval, finished bytes lost, note)``
like the other kinds: a command either continues (and ends equal to the uninterrupted reference run) or refuses with
exit status 2 and one ``error:`` line, having run, written and left nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
from pathlib import Path

import torch

from benchmarks.fault_tools import (
    CHECKPOINT_EVERY,
    CHILD,
    checkpoint_state,
    cli,
    fill,
    losses,
    one_line_error,
    small_fs,
)

__all__ = ["RUNDIR_KINDS"]

Outcome = tuple[bool, int, int, str]


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _stopped(work: Path, ref, model: str = "vae", steps: int = 2 * CHECKPOINT_EVERY) -> Path:
    """A copy of the model's run stopped at its step-``steps`` checkpoint (trained once per reference)."""
    src = ref.folder / f"stopped_{model}_{steps}"
    if not src.exists():
        res = cli(["train", str(ref.config(model)), "--out", str(src), "--max-steps", str(steps)])
        if res.rc != 0:
            raise RuntimeError(f"setup run failed: {res.stderr[-300:]}")
    run = work / "run"
    shutil.copytree(src, run)
    return run


def _recovered(run: Path, want) -> tuple[bool, str]:
    res = cli(["resume", str(run)])
    if res.rc != 0:
        return False, f"resume failed: {res.stderr.strip()[-150:]!r}"
    return (True, "") if losses(run) == want else (False, "resumed losses differ from the uninterrupted run")


# ------------------------------------------------------------------------------------ sweep state, metrics


_ESCAPES = ("../../../../x", "..", ".", "runs/../../y", "/abs/z", "../runs/good", ".hidden")


def report_traversal(work: Path, i: int, rng: random.Random, ref) -> list[Outcome]:
    """A hand-edited sweep.json names a run ``../../x`` (or ``/abs``, ``..``): ``report`` refuses in one line naming
    the run name, and nothing is written anywhere (not inside the sweep, not where the name points)."""
    src, _, _ = ref.run("vae")
    name = _ESCAPES[i % len(_ESCAPES)]
    sweep = work / "deep" / "er" / "sweep"
    shutil.copytree(src, sweep / "runs" / "good")
    state = {"format": "latentprior-sweep/1", "runs": {"good": {"status": "done", "labels": {"model": "m"}},
                                                        name: {"status": "done", "labels": {"model": "evil"}}}}
    (sweep / "sweep.json").write_text(json.dumps(state))
    before = _tree(work)
    out = []
    for args in (["report", str(sweep)], ["report", str(sweep), "--out", str(sweep / "report")]):
        res = cli(args)
        ok = one_line_error(res, "run name") and _tree(work) == before and not os.path.exists("/abs/z")
        out.append((ok, 0, 0, f"{name!r} {' '.join(args[2:])}" + ("" if ok else f": rc {res.rc} "
                                                                  f"{res.stderr.strip()[-150:]!r}")))
    return out


_BAD_LINES = (b'{"step": 31, "au/lo', b"disk full, sorry", b"[1, 2]", b"null", b'{"x": 1}', b'{"step": "abc"}',
              b'{"step": 3, "phase": "\xff\xfe"}', b'{"step": ' + b"9" * 5000 + b"}", b'{"step": true}')


def bad_metrics_line(work: Path, i: int, rng: random.Random, ref) -> list[Outcome]:
    """A bad line (half a record, text, a list, invalid UTF-8, a 5,000-digit step...) among the records and at the end
    of a stopped run's metrics.jsonl: ``resume`` continues to the reference's losses, ``report`` and ``eval`` work."""
    _, want, _ = ref.run("vae")
    run = _stopped(work, ref)
    bad = _BAD_LINES[(i + rng.randrange(len(_BAD_LINES))) % len(_BAD_LINES)]
    lines = (run / "metrics.jsonl").read_bytes().splitlines()
    at = rng.randrange(len(lines))
    (run / "metrics.jsonl").write_bytes(b"\n".join(lines[:at] + [bad] + lines[at:]) + b"\n" + bad)
    ok, why = _recovered(run, want)
    (run / "metrics.jsonl").write_bytes((run / "metrics.jsonl").read_bytes() + bad)
    problems = [why] if why else []
    for args in (["report", str(run), "--out", str(work / "report")],
                 ["eval", str(run), "--metrics", "nll", "--n", "10", "--nll-k", "2"]):
        res = cli(args)
        if res.rc != 0:
            problems.append(f"{args[0]} rc {res.rc}: {res.stderr.strip()[-120:]!r}")
    return [(not problems, 0, 0, f"{bad[:20]!r} at line {at + 1}; " + "; ".join(problems))]


# ---------------------------------------------------------------------------------- config.yaml, payload


def yaml_tag_config(work: Path, i: int, rng: random.Random, ref) -> list[Outcome]:
    """config.yaml holds ``!!python/object/apply:os.system``: ``eval`` and ``report`` refuse in one line naming the
    file, run nothing from it and write nothing (no eval record computed first, no report folder)."""
    src, _, _ = ref.run("vae")
    run = work / "run"
    shutil.copytree(src, run)
    marker = work / "pwned"
    tag = rng.choice(["!!python/object/apply:os.system", "!!python/object/new:os.system", "!!python/name:os.system"])
    (run / "config.yaml").write_text(f'{tag} ["touch {marker}"]\n')
    before = _tree(work)
    out = []
    for args in (["eval", str(run), "--metrics", "nll", "--n", str(10 + i), "--nll-k", "2"], ["report", str(run)]):
        res = cli(args)
        ok = one_line_error(res, "config.yaml") and not marker.exists() and _tree(work) == before
        out.append((ok, 0, 0, f"{args[0]} {tag}" + ("" if ok else f": rc {res.rc} {res.stderr.strip()[-150:]!r}")))
    return out


def _edit_moment(p):
    st = p["optimizers"]["autoencoder"]["state"]
    st[min(st)]["exp_avg"] = torch.zeros(3, 3, 3)


def _edit_step(p):
    st = p["optimizers"]["prior"]["state"]
    st[min(st)]["step"] = torch.tensor(float("nan"))


def _edit_lr(p):
    p["optimizers"]["autoencoder"]["param_groups"][0]["lr"] = float("inf")


def _edit_rng(p):
    p["rng"]["torch"] = p["rng"]["torch"][:64]


def _edit_weight(p):
    key = next(k for k, v in p["model"].items() if v.is_floating_point())
    p["model"][key] = p["model"][key].clone().fill_(float("nan"))


def _edit_scaler(p):
    p["scaler"] = {"scale": -1.0}


def _edit_group(p):
    del p["optimizers"]["prior"]


_EDITS = {"Adam moment of another shape": _edit_moment, "NaN step count": _edit_step, "infinite lr": _edit_lr,
          "RNG state cut short": _edit_rng, "NaN weight": _edit_weight, "scaler without its fields": _edit_scaler,
          "update group missing": _edit_group}


def malformed_payload(work: Path, i: int, rng: random.Random, ref) -> list[Outcome]:
    """The checkpoint's contents edited and its digest and index updated to match (a valid hash proves integrity,
    not meaning): ``resume`` refuses in one line naming the run, trains nothing and writes nothing."""
    run = _stopped(work, ref)
    name = list(_EDITS)[i % len(_EDITS)]
    index = json.loads((run / "checkpoints" / "latest.json").read_text())
    path = run / "checkpoints" / index["file"]
    payload = torch.load(path, weights_only=True)
    _EDITS[name](payload)
    buf = io.BytesIO()
    torch.save(payload, buf)
    data = buf.getvalue()
    path.write_bytes(data)
    path.with_suffix(".sha256").write_text(hashlib.sha256(data).hexdigest())
    index.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    (run / "checkpoints" / "latest.json").write_text(json.dumps(index))
    before = _tree(run)
    res = cli(["resume", str(run)])
    ok = one_line_error(res, str(run)) and _tree(run) == before
    return [(ok, 0, 0, name + ("" if ok else f": rc {res.rc} {res.stderr.strip()[-150:]!r}"))]


# ------------------------------------------------------------------------------------------- full disks


def tb_disk_full(work: Path, i: int, rng: random.Random, ref) -> list[Outcome]:
    """TensorBoard's background writer thread meets a full disk first: a tmpfs with no room mounted on RUN_DIR/tb
    (even trials, as root), or its record writer raising ENOSPC from a random event on (odd trials, or without
    root). One ``error:`` line naming RUN_DIR/tb and saying how to continue, exit 2, no thread traceback, the
    checkpoint intact; then ``resume`` ends equal to the reference."""
    _, want, _ = ref.run("vae")
    run = _stopped(work, ref, steps=CHECKPOINT_EVERY)
    before = checkpoint_state(run)
    method = "tmpfs" if i % 2 == 0 else "inject"
    if method == "tmpfs":
        with small_fs(run / "tb", 1) as (tb, how):
            if how == "tmpfs":
                fill(tb, 0)
                res = cli(["resume", str(run)])
            else:
                method = "inject"
    if method == "inject":

        k = rng.randint(1, 80)  # ~10 events a step: within the first 8 steps of the resumed run
        res = cli(["resume", str(run)], command=CHILD, env={"LATENTPRIOR_FAULT": f"tbwrite:{k}"})
        method = f"inject:{k}"
    refused = one_line_error(res, str(run / "tb"), "latentprior resume")
    after = checkpoint_state(run)
    intact = after[1] and after[0] is not None and after[0] >= before[0]
    beyond = max(0, max(losses(run), default=0) - (after[0] or 0) - CHECKPOINT_EVERY)
    ok, why = _recovered(run, want)
    note = method + ("" if refused else f"; not one line naming tb: rc {res.rc} {res.stderr.strip()[-200:]!r}")
    return [(refused and intact and ok, beyond, 0 if intact else before[2], f"{note} {why}".strip())]


def eval_disk_full_one_page(work: Path, i: int, rng: random.Random, ref) -> list[Outcome]:
    """``eval`` on a file system with no page free, or one (trial i % 3 == 1: the new record replaces the old and
    the hparams fit; == 2: there is no old record, so the new one takes the page and TensorBoard's hparams meet a
    full disk). Either the command finishes or it refuses in one line naming the run; the record is kept whole
    or replaced whole, and nothing else is left (no ``.part`` file, no ``tb/.hparams.<pid>/`` folder)."""
    src, _, _ = ref.run("vae")
    free, keep_old = ((0, True), (4096, True), (4096, False))[i % 3]
    evaluate = ["--metrics", "nll", "--nll-k", "2", "--batch-size", "10"]
    with small_fs(work / "fs", 16) as (fs, method):
        if method != "tmpfs":
            return [(False, 0, 0, "skipped: needs root to mount a small tmpfs")]
        run = fs / "run"
        shutil.copytree(src, run)
        first = cli(["eval", str(run), *evaluate, "--n", "10"])
        done = (run / "eval" / "nll.json").read_bytes() if first.rc == 0 else b""
        if not keep_old:
            (run / "eval" / "nll.json").unlink()
        names = {str(p.relative_to(fs)) for p in fs.rglob("*")}
        fill(fs, free)
        res = cli(["eval", str(run), *evaluate, "--n", "12"])
        left = {str(p.relative_to(fs)) for p in fs.rglob("*")} - names - {"filler", "run/eval/nll.json"}
        left = {p for p in left if not (res.rc == 0 and p.startswith("run/tb/hparams/"))}
        try:
            n_ref = json.loads((run / "eval" / "nll.json").read_text())["protocol"]["n_ref"]
        except FileNotFoundError:
            n_ref = None
        except (OSError, ValueError, KeyError, TypeError):
            n_ref = "damaged"
        (fs / "filler").unlink(missing_ok=True)
    whole = n_ref == 12 or (n_ref == 10 and keep_old) or (n_ref is None and not keep_old and res.rc != 0)
    answered = res.rc == 0 or one_line_error(res, str(run))
    note = (f"{free} bytes free{'' if keep_old else ', no old record'}: rc {res.rc}"
            + ("" if answered else f" {res.stderr.strip()[-160:]!r}") + (f"; left {sorted(left)}" if left else "")
            + ("" if whole else f"; record n_ref {n_ref}"))
    return [(bool(done) and answered and whole and not left, 0, 0 if whole else len(done) or 1, note)]


RUNDIR_KINDS = {"report_traversal": report_traversal, "bad_metrics_line": bad_metrics_line,
                "yaml_tag_config": yaml_tag_config, "malformed_payload": malformed_payload,
                "tb_disk_full": tb_disk_full, "eval_disk_full_one_page": eval_disk_full_one_page}
