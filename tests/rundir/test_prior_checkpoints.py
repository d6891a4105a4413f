"""A fitted prior's checkpoint (rundir/prior_checkpoints.py): verified and checked field by field like a run's, and
the layout of a run's fitted priors and tempered records."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
import torch

from latentprior.config import EvalConfig, expost_config
from latentprior.rundir import RunDir, missing_metrics, read_eval_records, write_eval_record
from latentprior.rundir.checkpoints import CheckpointError
from latentprior.rundir.prior_checkpoints import PRIOR_FORMAT, load_prior_checkpoint, save_prior_checkpoint

AUTOENCODER = {"file": "step_00000012.pt", "sha256": "a" * 64, "step": 12, "bytes": 10}


@pytest.fixture
def prior_dir(tmp_path):
    rd = RunDir(tmp_path / "run").prior("gmm")
    save_prior_checkpoint(rd, expost_config("gmm", ["prior.components=2"]),
                          state={"means": torch.arange(6.0).reshape(2, 3)}, latent_dim=3, image_shape=(1, 28, 28),
                          fit={"seconds": 1.5, "history": [], "n_latents": 100}, autoencoder=AUTOENCODER)
    return rd


def _rewrite(rd: RunDir, edit) -> None:
    """Replace the checkpoint's payload by ``edit(payload)`` and index it with a valid hash."""
    index = json.loads(rd.checkpoint_index.read_text())
    path = rd.checkpoint(index["file"])
    buf = io.BytesIO()
    torch.save(edit(torch.load(path, weights_only=True)), buf)
    path.write_bytes(buf.getvalue())
    rd.checkpoint_index.write_text(json.dumps(index | {"sha256": hashlib.sha256(buf.getvalue()).hexdigest()}))


def test_a_prior_checkpoint_round_trips_with_its_config(prior_dir) -> None:
    ckpt = load_prior_checkpoint(prior_dir)
    assert ckpt["format"] == PRIOR_FORMAT and ckpt["step"] == 12 and ckpt["autoencoder"]["sha256"] == "a" * 64
    assert ckpt["config"] == expost_config("gmm", ["prior.components=2"])
    assert torch.equal(ckpt["state"]["means"], torch.arange(6.0).reshape(2, 3))
    assert RunDir(prior_dir.path.parents[1]).prior_names() == ["gmm"]


@pytest.mark.parametrize(("edit", "message"), [
    (lambda p: {k: v for k, v in p.items() if k != "autoencoder"}, "lacks 'autoencoder'"),
    (lambda p: p | {"state": {"means": [1.0]}}, "field 'state'"),
    (lambda p: p | {"fit": {"seconds": -1, "history": [], "n_latents": 1}}, "field 'fit'"),
    (lambda p: p | {"config": {"kind": "gmm", "epochs": 3}}, "prior config is invalid"),
    (lambda p: p | {"format": "latentprior-checkpoint/1"}, "is not a latentprior-prior-checkpoint/1"),
    (lambda p: p | {"step": 13}, "its index says 12"),
])
def test_a_damaged_prior_checkpoint_is_refused_in_one_line(prior_dir, edit, message) -> None:
    _rewrite(prior_dir, edit)
    with pytest.raises(CheckpointError, match=message) as e:
        load_prior_checkpoint(prior_dir)
    assert "\n" not in str(e.value)


def test_a_corrupt_prior_checkpoint_is_refused_before_unpickling(prior_dir) -> None:
    index = json.loads(prior_dir.checkpoint_index.read_text())
    path = prior_dir.checkpoint(index["file"])
    path.write_bytes(path.read_bytes()[:-1] + b"x")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_prior_checkpoint(prior_dir)


def test_tempered_records_live_apart_and_are_reused_only_at_their_temperature(tmp_path) -> None:
    rd = RunDir(tmp_path)
    record = {"value": 3.0, "protocol": {"n": 100, "n_ref_asked": 0}}
    write_eval_record(rd, "fid", record, temperature=0.7)
    assert (rd.eval / "temperature=0.7" / "fid.json").is_file() and not rd.eval_record("fid").exists()
    assert read_eval_records(rd) == {} and read_eval_records(rd, temperature=0.7) == {"fid": record}
    ev = EvalConfig(metrics=("fid",), n=100)
    assert missing_metrics(rd, ev) == ["fid"]
    assert missing_metrics(rd, EvalConfig(metrics=("fid",), n=100, temperature=0.7)) == []
