"""Checkpoints: a valid hash proves integrity, not meaning, so payloads are checked field by field; a checkpoint
written but not yet indexed when its writer died is adopted (its own digest verified); temporaries a dead writer left
are removed by the next writer."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys

import pytest
import torch

from latentprior.config import config_from_dict
from latentprior.models.load import load_run
from latentprior.rundir import RunDir
from latentprior.rundir.checkpoints import CheckpointError, latest_checkpoint, load_checkpoint
from latentprior.training import train


def _cfg(**train_keys):
    return config_from_dict({
        "data": {"name": "digits"}, "net": {"arch": "infogan", "width": 0.0625},
        "prior": {"kind": "realnvp", "layers": 2, "hidden": 16}, "model": {"latent_dim": 4},
        "objective": {"kind": "vae", "beta": 0.0, "lr": 1e-3},
        "train": {"epochs": 1, "prior_epochs": 0, "batch_size": 100, "log_every": 2, "checkpoint_every": 4,
                  "progress": False, **train_keys}})


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    run = tmp_path_factory.mktemp("ckpt") / "run"
    train(_cfg(), run, max_steps=8)
    return run


def _rewrite(run, edit) -> None:
    """Replace the latest checkpoint's payload by ``edit(payload)`` and index it with a valid hash."""
    rd = RunDir(run)
    index = json.loads(rd.checkpoint_index.read_text())
    path = rd.checkpoint(index["file"])
    payload = torch.load(path, weights_only=True)
    buf = io.BytesIO()
    torch.save(edit(payload), buf)
    path.write_bytes(buf.getvalue())
    index["sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
    rd.checkpoint_index.write_text(json.dumps(index))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "latentprior.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def _drop(key):
    return lambda p: {k: v for k, v in p.items() if k != key}


MALFORMED = {
    "no optimizers": (_drop("optimizers"), "resume", "lacks ['optimizers']"),
    "no rng": (_drop("rng"), "resume", "lacks ['rng']"),
    "step -5": (lambda p: p | {"step": -5}, "sample", "field 'step'"),
    "step 'abc'": (lambda p: p | {"step": "abc"}, "sample", "field 'step'"),
    "bad image_shape": (lambda p: p | {"image_shape": [1, 28]}, "sample", "field 'image_shape'"),
    "shape mismatch": (lambda p: p | {"model": {k: (v[:1] if v.dim() else v) for k, v in p["model"].items()}},
                       "sample", "do not fit the model"),
    "shape mismatch on resume": (lambda p: p | {"model": {k: (v[:1] if v.dim() else v) for k, v in p["model"].items()}},
                                 "resume", "do not fit the model"),
    "optimizer of another model": (lambda p: p | {"optimizers": {"prior": p["optimizers"]["prior"]}}, "resume",
                                   "optimizer states do not fit"),
    "model not tensors": (lambda p: p | {"model": {"x": 1}}, "sample", "field 'model'"),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(MALFORMED))
def test_malformed_payload_with_a_valid_hash_is_one_line_exit_2(kind, stopped, tmp_path):
    edit, verb, says = MALFORMED[kind]
    run = tmp_path / "run"
    shutil.copytree(stopped, run)
    _rewrite(run, edit)
    args = ["resume", run] if verb == "resume" else ["sample", run, "--out", tmp_path / "s.png", "--n", 4]
    done = _cli(*args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and says in lines[-1] and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "s.png").exists()


def test_a_checkpoint_without_resume_state_still_samples(stopped, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(stopped, run)
    _rewrite(run, _drop("optimizers"))
    model, _ = load_run(run, device="cpu")
    assert model.sample(2).shape == (2, 1, 28, 28)
    with pytest.raises(CheckpointError, match="can be sampled and evaluated, not resumed"):
        load_checkpoint(run, resumable=True)


def test_an_indexed_step_that_disagrees_with_the_payload_is_refused(stopped, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(stopped, run)
    _rewrite(run, lambda p: p | {"step": 4})
    with pytest.raises(CheckpointError, match="holds step 4 but its index says 8"):
        load_checkpoint(run)


@pytest.mark.slow
def test_a_checkpoint_written_but_not_indexed_is_adopted_when_its_digest_verifies(tmp_path):
    """A writer killed between the checkpoint and latest.json: the newer file is complete (renamed after fsync)
    and its digest file says so, so it is resumed from; the twin resumed from it ends like an uninterrupted run."""
    cfg = _cfg()
    train(cfg, tmp_path / "full")
    run = RunDir(tmp_path / "run")
    train(cfg, run.path, max_steps=8)
    older = json.loads(run.checkpoint_index.read_text())
    train(cfg, tmp_path / "ahead", max_steps=4)
    # put the index of step 4 back, as if the writer of step 8 died right after writing the step-8 file
    shutil.copy(tmp_path / "ahead" / run.checkpoint_index.relative_to(run.path), run.checkpoint_index)
    assert older["step"] == 8 and json.loads(run.checkpoint_index.read_text())["step"] == 4
    assert latest_checkpoint(run)["step"] == 8
    train(cfg, run.path)
    final = [torch.load(p, weights_only=True)["model"] for p in
             (RunDir(tmp_path / "full").checkpoint(json.loads(RunDir(tmp_path / "full").checkpoint_index.read_text())
                                                   ["file"]), run.checkpoint(latest_checkpoint(run)["file"]))]
    assert all(torch.equal(final[0][k], final[1][k]) for k in final[0])


def test_an_unindexed_checkpoint_whose_digest_fails_is_ignored_with_a_notice(stopped, tmp_path, caplog):
    run = RunDir(tmp_path / "run")
    shutil.copytree(stopped, run.path)
    index = json.loads(run.checkpoint_index.read_text())
    fake = run.checkpoints / "step_00000099.pt"
    fake.write_bytes(b"not a checkpoint")
    fake.with_suffix(".sha256").write_text("0" * 64)
    assert latest_checkpoint(run) == index
    assert "step_00000099.pt is not listed" in caplog.text


def test_temporaries_of_a_dead_writer_are_removed_by_the_next_writer(stopped, tmp_path):
    run = RunDir(tmp_path / "run")
    shutil.copytree(stopped, run.path)
    part = run.checkpoints / ".step_00000012.pt.4242.deadbeef.part"
    part.write_bytes(b"\0" * 1000)
    orphan = run.checkpoints / "step_00000012.sha256"
    orphan.write_text("1" * 64)
    train(_cfg(), run.path, max_steps=9)
    assert not part.exists() and not orphan.exists()
