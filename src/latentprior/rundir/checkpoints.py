"""``RUN_DIR/checkpoints/``: self-describing, verified checkpoints, their index, and what may change on resume.

    checkpoints/step_NNNNNNNN.pt       torch.save of the payload (schema below)
    checkpoints/step_NNNNNNNN.sha256   its SHA-256, written before the checkpoint itself
    checkpoints/latest.json            {file, sha256, step, bytes, total_steps, steps_per_epoch}: the checkpoint to
                                       resume from (rundir/progress.py reads it without torch)

A checkpoint holds the resolved config, the step, every module and optimizer state, the gradient scaler's state
and the RNG states, so a model can be rebuilt from the run directory alone (:func:`latentprior.models.load_run`).
Every file is written atomically (``atomic.py``). Loading verifies the SHA-256 before unpickling anything,
unpickles with ``weights_only=True`` (tensors and plain containers only), and then checks the payload field by
field against :data:`SCHEMA`: a valid hash proves integrity, not meaning.

A writer that dies between the checkpoint and the index leaves a complete but unindexed ``step_N.pt`` beside its
``.sha256``; :func:`latest_checkpoint` adopts it when its own hash verifies. A writer that dies mid-write leaves a
``.*.part`` temporary, which :func:`clean_partial_files` removes when the next writer opens the run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

import latentprior
from latentprior.atomic import atomic_write_bytes
from latentprior.config import Config, ConfigError, config_from_dict, config_to_dict, flatten
from latentprior.errors import UserError
from latentprior.rundir.layout import RunDir, run_dir_of

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "latest_checkpoint", "verify_checkpoint",
           "check_resumable", "resume_changes", "resume_keys", "check_resume_overrides", "clean_partial_files",
           "check_payload", "check_fields", "write_verified", "read_verified", "FORMAT", "RESUME_FIELDS"]

log = logging.getLogger(__name__)

FORMAT = "latentprior-checkpoint/1"
_FILE_NAME = re.compile(r"step_(\d{8,})\.pt")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_KEEP = 2  # older checkpoints beyond this many are deleted after a successful write
RESUME_FIELDS = ("optimizers", "rng")  # what a checkpoint needs beyond SCHEMA's required fields to be resumed


class CheckpointError(RuntimeError, UserError):
    """A checkpoint is missing, corrupt, or not a latentprior checkpoint."""


def _digest_path(ckpt: Path) -> Path:
    return ckpt.with_suffix(".sha256")


def save_checkpoint(run_dir: str | os.PathLike[str] | RunDir, cfg: Config, step: int, state: dict[str, Any], *,
                    budget: dict[str, int] | None = None) -> Path:
    """Write ``checkpoints/step_{step:08d}.pt`` atomically (its digest first) and point ``latest.json`` at it.

    ``budget`` (``total_steps``, ``steps_per_epoch``) goes into the index too, so that readers without torch
    (reports) can tell a finished run from one stopped early, and resume can tell it has nothing to do."""
    payload = {"format": FORMAT, "library_version": latentprior.__version__, "torch_version": str(torch.__version__),
               "saved_at": time.time(), "config": config_to_dict(cfg), "step": int(step), **state}
    return write_verified(run_dir, step, payload, budget=budget)


def write_verified(run_dir: str | os.PathLike[str] | RunDir, step: int, payload: dict[str, Any], *,
                   budget: dict[str, int] | None = None) -> Path:
    """``torch.save`` of ``payload`` as ``checkpoints/step_{step:08d}.pt`` of ``run_dir``: its digest file first,
    then the file, then ``latest.json`` (each atomically, with ``budget`` in the index); older checkpoints beyond
    the last two are removed."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    data = buf.getvalue()
    rd = run_dir_of(run_dir)
    path = rd.checkpoints / f"step_{step:08d}.pt"
    digest = hashlib.sha256(data).hexdigest()
    atomic_write_bytes(_digest_path(path), digest.encode())
    atomic_write_bytes(path, data)
    index = {"file": path.name, "sha256": digest, "step": int(step), "bytes": len(data),
             **{k: int(v) for k, v in (budget or {}).items()}}
    atomic_write_bytes(rd.checkpoint_index, json.dumps(index, indent=1).encode())
    for old in sorted(rd.checkpoints.glob("step_*.pt"))[:-_KEEP]:
        if old != path:
            old.unlink(missing_ok=True)
            _digest_path(old).unlink(missing_ok=True)
    return path


def clean_partial_files(run_dir: str | os.PathLike[str] | RunDir) -> list[Path]:
    """Remove the temporaries (``.*.part``) a dead writer left in ``checkpoints/``, and digests without their
    checkpoint. Call it only while holding the run's lock: then no other writer can own them. Returns them."""
    folder = run_dir_of(run_dir).checkpoints
    gone = [p for p in folder.glob(".*.part")] if folder.is_dir() else []
    gone += [p for p in folder.glob("step_*.sha256") if not p.with_suffix(".pt").exists()] if folder.is_dir() else []
    for p in gone:
        p.unlink(missing_ok=True)
    if gone:
        log.info("removed %d temporary file(s) left in %s by an interrupted writer", len(gone), folder)
    return gone


def _read_index(rd: RunDir) -> dict[str, Any] | None:
    """The ``latest.json`` index, checked before anything trusts it: a mapping with a plain file name
    ``step_*.pt`` (no path, so a hostile index cannot point outside the run), a hex SHA-256 and an integer step."""
    index = rd.checkpoint_index
    if not index.exists():
        return None
    try:
        data = json.loads(index.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise CheckpointError(f"{index} is corrupt ({_first_line(e)}); expected the JSON index written by "
                              "latentprior") from e
    ok = (isinstance(data, dict) and isinstance(data.get("file"), str) and _FILE_NAME.fullmatch(data["file"])
          and isinstance(data.get("sha256"), str) and _SHA256.fullmatch(data["sha256"])
          and isinstance(data.get("step"), int) and not isinstance(data.get("step"), bool) and data["step"] >= 0)
    if not ok:
        raise CheckpointError(f"{index} is not a latentprior checkpoint index (expected {{file: step_N.pt, "
                              "sha256, step, bytes}})")
    return data


def _unindexed(rd: RunDir, after: int) -> dict[str, Any] | None:
    """The newest complete checkpoint past step ``after`` that the index does not list and whose own digest file
    verifies it, as an index entry; None when there is none."""
    found = []
    for p in rd.checkpoints.glob("step_*.pt") if rd.checkpoints.is_dir() else []:
        m = _FILE_NAME.fullmatch(p.name)
        if m and int(m.group(1)) > after:
            found.append((int(m.group(1)), p))
    for step, p in sorted(found, reverse=True):
        try:
            want = _digest_path(p).read_text().strip()
            data = p.read_bytes()
        except OSError:
            continue
        if _SHA256.fullmatch(want) and hashlib.sha256(data).hexdigest() == want:
            return {"file": p.name, "sha256": want, "step": step, "bytes": len(data)}
        log.warning("%s is not listed in %s and has no valid digest file; it is ignored (to use it, check it and "
                    "write its sha256 into %s)", p, rd.checkpoint_index, _digest_path(p).name)
    return None


def latest_checkpoint(run_dir: str | os.PathLike[str] | RunDir) -> dict[str, Any] | None:
    """The index entry of the checkpoint to resume from (``{file, sha256, step, bytes}``), or None when the run has
    none. A verified checkpoint newer than the index (a writer killed between the two files) is adopted."""
    rd = run_dir_of(run_dir)
    index = _read_index(rd)
    newer = _unindexed(rd, -1 if index is None else index["step"])
    if newer is not None:
        log.warning("%s: adopting %s, written completely (its digest verifies) but not yet indexed when its writer "
                    "stopped", rd.checkpoints, newer["file"])
        return newer
    return index


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _is_int(v: Any, low: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _finite_number(v: Any, low: float = -math.inf) -> bool:
    if isinstance(v, torch.Tensor) and v.numel() == 1 and not v.dtype.is_complex:
        v = v.item()
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= low


def _tensor_map(v: Any) -> bool:
    """Names -> tensors, every floating-point value finite: the loop checks the weights before each checkpoint,
    so a NaN or inf here was put there after the run wrote it."""
    return isinstance(v, dict) and all(
        isinstance(k, str) and isinstance(t, torch.Tensor)
        and (not t.is_floating_point() or t.numel() == 0 or bool(torch.isfinite(t).all())) for k, t in v.items())


def _optimizer(v: Any) -> bool:
    """One ``torch.optim`` state dict: ``state`` (parameter index -> its tensors and numbers) and ``param_groups``
    (each with its parameter indices and a finite learning rate > 0). Whether the tensors fit the parameters is
    checked when the run is rebuilt (training/resume.py)."""
    if not (isinstance(v, dict) and isinstance(v.get("state"), dict) and isinstance(v.get("param_groups"), list)):
        return False
    groups_ok = all(isinstance(g, dict) and isinstance(g.get("params"), list) and all(map(_is_int, g["params"]))
                    and _finite_number(g.get("lr"), 0) for g in v["param_groups"])
    state_ok = all(_is_int(i) and isinstance(st, dict) and all(
        isinstance(x, torch.Tensor) or _finite_number(x) for x in st.values()) for i, st in v["state"].items())
    return groups_ok and state_ok


def _objective_state(v: Any) -> bool:
    """An objective's own state beside its optimizers (e.g. the cvae's KL-schedule step count): finite numbers."""
    return isinstance(v, dict) and "param_groups" not in v and all(
        isinstance(k, str) and _finite_number(x) for k, x in v.items())


def _optimizers(v: Any) -> bool:
    """Every update group's optimizer state, and any objective state saved with them (objectives/base.py)."""
    return isinstance(v, dict) and all(isinstance(k, str) and (_optimizer(s) or _objective_state(s))
                                       for k, s in v.items())


def _own_rng(v: Any) -> bool:
    """A generator state of the size this torch's CPU generator has (it refuses any other), and a CUDA one."""
    if not isinstance(v, dict) or not isinstance(v.get("torch"), torch.Tensor):
        return False
    cpu, cuda = v["torch"], v.get("cuda")
    return (cpu.dtype == torch.uint8 and cpu.shape == torch.get_rng_state().shape
            and (cuda is None or (isinstance(cuda, torch.Tensor) and cuda.dtype == torch.uint8 and cuda.dim() == 1)))


def _rng(v: Any) -> bool:
    """This process's RNG states and, from a multi-process run, every rank's (``ranks``)."""
    ranks = v.get("ranks") if isinstance(v, dict) else None
    return _own_rng(v) and (ranks is None or (isinstance(ranks, list) and len(ranks) >= 1
                                              and all(map(_own_rng, ranks))))


_SCALER_KEYS = ("scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker")


def _scaler(v: Any) -> bool:
    """A GradScaler state: empty (saved by a disabled scaler) or every field a finite number, the scale > 0."""
    return isinstance(v, dict) and (not v or (all(_finite_number(v.get(k)) for k in _SCALER_KEYS)
                                              and _finite_number(v["scale"], 0) and float(v["scale"]) > 0))


# field -> (required, check, what it must be); required fields are what loading a model needs.
SCHEMA: dict[str, tuple[bool, Any, str]] = {
    "config": (True, lambda v: isinstance(v, dict), "the run's config as a mapping"),
    "step": (True, _is_int, "an integer >= 0"),
    "model": (True, _tensor_map, "a state dict (names -> tensors, every value finite)"),
    "image_shape": (True, lambda v: isinstance(v, list | tuple) and len(v) == 3 and all(_is_int(s, 1) for s in v),
                    "[C, H, W] of positive integers"),
    "optimizers": (False, _optimizers, "a mapping of update groups to optimizer state dicts ('state', and "
                   "'param_groups' with parameter indices and a finite lr > 0)"),
    "rng": (False, _rng, "RNG states with a uint8 'torch' tensor of this torch's generator size (and, from a "
            "multi-process run, one such state per rank)"),
    "train_seconds": (False, lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                      and v >= 0, "a finite number of seconds >= 0"),
    "metrics": (False, lambda v: isinstance(v, dict), "a mapping"),
    "scaler": (False, _scaler, f"a GradScaler state dict (empty, or finite {', '.join(_SCALER_KEYS)}; scale > 0)"),
    # images passed from Python (data.name: custom): the SHA-1 of their bytes, compared on resume
    "data_sha1": (False, lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{40}", v) is not None,
                  "a SHA-1 (40 hex digits)"),
}


def check_fields(payload: dict[str, Any], fields: Iterable[tuple[str, bool, Callable[[Any], bool], str]],
                 path: Path | str, writer: str) -> None:
    """A one-line :class:`CheckpointError` naming the first of ``fields`` — (name, required, check, description) —
    that ``payload`` lacks (when required) or holds with the wrong type; ``writer`` is who writes such files."""
    for name, required, ok, what in fields:
        if name not in payload:
            if required:
                raise CheckpointError(f"{path} lacks '{name}' ({what}); it was not written by {writer}")
            continue
        if not ok(payload[name]):
            raise CheckpointError(f"{path}: field '{name}' is not {what}; the checkpoint is damaged or was edited")


def check_payload(payload: Any, path: Path | str) -> dict[str, Any]:
    """``payload`` if it is a latentprior checkpoint whose every field has the type :data:`SCHEMA` states, else a
    one-line :class:`CheckpointError` naming the first bad field. The config is returned as a :class:`Config`."""
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path} holds a {type(payload).__name__}, not a {FORMAT} payload (a dict)")
    if payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} file (format={payload.get('format')!r})")
    check_fields(payload, ((n, *rule) for n, rule in SCHEMA.items()), path, "latentprior's training loop")
    try:
        cfg = config_from_dict(payload["config"])
    except ConfigError as e:
        raise CheckpointError(f"{path}: its config is invalid: {e}") from e
    return {**payload, "config": cfg, "image_shape": [int(s) for s in payload["image_shape"]]}


def verify_checkpoint(run_dir: str | os.PathLike[str] | RunDir, step: int) -> Path:
    """The indexed checkpoint of ``step``, read back from disk and its SHA-256 checked against the index (what
    ``resume`` will verify), without unpickling it; else :class:`CheckpointError`."""
    rd = run_dir_of(run_dir)
    index = latest_checkpoint(rd)
    if index is None or index["step"] != step:
        raise CheckpointError(f"{rd.checkpoint_index} does not name the checkpoint of step {step} just written")
    path = rd.checkpoint(index["file"])
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"checkpoint {path} just written cannot be read back: {_first_line(e)}") from e
    if hashlib.sha256(data).hexdigest() != index["sha256"]:
        raise CheckpointError(f"checkpoint {path} just written does not match its digest; the disk or file "
                              "system corrupted it")
    return path


def load_checkpoint(run_dir: str | os.PathLike[str] | RunDir, map_location: str | torch.device = "cpu", *,
                    resumable: bool = False) -> dict[str, Any]:
    """Load the latest checkpoint of ``run_dir``: SHA-256 verified, unpickled with ``weights_only``, checked
    against :data:`SCHEMA` (``resumable``: also the fields resuming needs). The config comes back as a Config."""
    payload, path, index = read_verified(run_dir, map_location)
    payload = check_payload(payload, path)
    if payload["step"] != index["step"]:
        raise CheckpointError(f"{path} holds step {payload['step']} but its index says {index['step']}; the "
                              "checkpoint or its index was edited")
    missing = [f for f in RESUME_FIELDS if f not in payload] if resumable else []
    if missing:
        raise CheckpointError(f"{path} lacks {missing}: it can be sampled and evaluated, not resumed")
    return payload


def read_verified(run_dir: str | os.PathLike[str] | RunDir, map_location: str | torch.device = "cpu"
                  ) -> tuple[Any, Path, dict[str, Any]]:
    """The unpickled payload of the checkpoint ``latest.json`` names (after its SHA-256 matched the index; tensors
    and plain containers only), its path and the index entry. The caller checks the payload's schema."""
    rd = run_dir_of(run_dir)
    index = latest_checkpoint(rd)
    if index is None:
        raise CheckpointError(f"no checkpoint in {rd.checkpoints} (expected latest.json and step_*.pt)")
    path = rd.checkpoint(index["file"])
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} listed in latest.json is missing")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != index["sha256"]:
        raise CheckpointError(
            f"checkpoint {path} is corrupt: sha256 {digest} but latest.json expects {index['sha256']} "
            f"({len(data)} bytes, expected {index.get('bytes')}); refusing to load it")
    try:
        payload = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as e:  # a valid hash over an unreadable file means it was never a checkpoint of ours
        raise CheckpointError(f"{path} could not be read as a checkpoint: {_first_line(e)}") from e
    return payload, path, index


def _may_change(section: str, f: dataclasses.Field) -> bool:
    # data.dir says where the files are, not what they are
    return bool(f.metadata.get("resume_may_change")) or (section, f.name) == ("data", "dir")


def resume_keys() -> list[str]:
    """``section.key`` of every key a resumed run may change: the fields marked ``resume_may_change`` (the
    budget, bookkeeping and speed keys of ``train``, the objective's learning rates) and ``data.dir``."""
    default = Config()
    return [f"{section.name}.{f.name}" for section in dataclasses.fields(default)
            for f in dataclasses.fields(getattr(default, section.name)) if _may_change(section.name, f)]


def check_resume_overrides(keys: list[str]) -> None:
    """Refuse, in one line naming it, the first of ``keys`` (``section.key``) that a resumed run may not change."""
    allowed, known = resume_keys(), set(flatten(config_to_dict(Config())))
    for key in keys:
        if key in known and key not in allowed:  # an unknown key is refused by apply_overrides, listing the keys
            raise ConfigError(f"resume --set {key}: {key} decides what the run trains, so it cannot change in the "
                              f"middle of a run; keys resume may change: {', '.join(allowed)} (to change {key}, "
                              "train a new run)")


def resume_changes(saved: Config, cfg: Config) -> dict[str, tuple[Any, Any]]:
    """``{section.key: (saved value, new value)}`` of the keys that may change on resume and do."""
    out = {}
    for section in dataclasses.fields(saved):
        a, b = getattr(saved, section.name), getattr(cfg, section.name)
        for f in dataclasses.fields(a):
            if _may_change(section.name, f) and getattr(a, f.name) != getattr(b, f.name):
                out[f"{section.name}.{f.name}"] = (getattr(a, f.name), getattr(b, f.name))
    return out


def check_resumable(saved: Config, cfg: Config) -> None:
    """Refuse to continue the run saved with ``saved`` under a ``cfg`` that changes what is trained.

    A key may change when its config field says so (``metadata={"resume_may_change": True}``: the budget,
    bookkeeping and speed keys of ``TrainConfig`` and the objective's learning rates), and ``data.dir`` may: it
    says where the files are, not what they are (:func:`resume_keys`).
    """
    for section in dataclasses.fields(saved):
        a, b = getattr(saved, section.name), getattr(cfg, section.name)
        for f in dataclasses.fields(a):
            if _may_change(section.name, f):
                continue
            was, now = getattr(a, f.name), getattr(b, f.name)
            if was != now:
                raise CheckpointError(
                    f"the run directory holds a run with {section.name}.{f.name}={was!r}, but this config has "
                    f"{now!r}; use a new --out directory, or `latentprior resume` to continue it as saved")
