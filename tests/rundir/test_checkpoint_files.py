"""Checkpoint files: a corrupt, truncated or foreign checkpoint is refused in one line; a model whose config differs
is not resumed."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys

import pytest
import torch

from latentprior.models.load import load_run
from latentprior.rundir.checkpoints import CheckpointError, load_checkpoint
from latentprior.training import train
from tests.builders import tiny_vae_config


def test_loading_a_run_does_not_import_the_training_loop():
    code = ("import sys; from latentprior.models import load_run; "
            "print(sorted(m for m in sys.modules if m.startswith('latentprior.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    loaded = done.stdout.strip()
    assert "latentprior.rundir.checkpoints" in loaded and "latentprior.training" not in loaded


def test_corrupt_or_truncated_checkpoint_is_refused(tmp_path):
    run = tmp_path / "run"
    train(tiny_vae_config(epochs=0.4, prior_epochs=0), run)
    index = json.loads((run / "checkpoints" / "latest.json").read_text())
    path = run / "checkpoints" / index["file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt.*sha256"):
        load_run(run)
    path.write_bytes(bytes(data[: len(data) // 3]))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_run(run)


def test_checkpoint_that_is_not_a_dict_is_refused_in_one_line(tmp_path):
    buf = io.BytesIO()
    torch.save([1, 2, 3], buf)  # a valid torch file, listed with the right hash, but not our payload
    data = buf.getvalue()
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "step_00000001.pt").write_bytes(data)
    index = {"file": "step_00000001.pt", "sha256": hashlib.sha256(data).hexdigest(), "step": 1, "bytes": len(data)}
    (tmp_path / "checkpoints" / "latest.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=r"holds a list, not a latentprior-checkpoint/1 payload") as e:
        load_checkpoint(tmp_path)
    assert "\n" not in str(e.value)


def test_resume_refuses_a_different_model(tmp_path):
    run = tmp_path / "run"
    train(tiny_vae_config(epochs=0.2, prior_epochs=0), run)
    other = tiny_vae_config(epochs=0.2, prior_epochs=0).replace(**{"model.latent_dim": 4})
    with pytest.raises(CheckpointError, match="model.latent_dim"):
        train(other, run)


