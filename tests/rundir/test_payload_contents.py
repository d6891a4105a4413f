"""Checkpoints whose hash verifies but whose contents do not fit the run they claim to be (edited, or written by
something else): every field of the payload ``training/run.py`` writes is checked, by its schema when loaded and
against the rebuilt run when resumed, so ``resume`` and ``sample`` refuse in one line naming what is wrong instead
of failing mid-training or training on garbage."""

from __future__ import annotations

import hashlib
import io
import json
import math
import shutil

import pytest
import torch

from latentprior.cli import main
from latentprior.config import config_from_dict
from latentprior.rundir import RunDir, read_metrics
from latentprior.rundir.checkpoints import CheckpointError, check_payload, load_checkpoint
from latentprior.training import train
from latentprior.training.resume import load_scaler_state

CONFIG = {"data": {"name": "digits"}, "net": {"width": 0.0625}, "prior": {"kind": "realnvp", "layers": 2, "hidden": 16},
          "model": {"latent_dim": 4}, "objective": {"kind": "vae", "beta": 0.0, "lr": 1.0e-3},
          "train": {"epochs": 1, "prior_epochs": 0, "batch_size": 100, "log_every": 1, "checkpoint_every": 4,
                    "progress": False, "device": "cpu"}}


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """A run stopped at its step-8 checkpoint, and its uninterrupted twin's losses."""
    root = tmp_path_factory.mktemp("payload")
    cfg = config_from_dict(CONFIG)
    train(cfg, root / "full")
    train(cfg, root / "run", max_steps=8)
    return root / "run", [(r["step"], r.get("autoencoder/loss")) for r in read_metrics(root / "full")]


def _payload(run):
    rd = RunDir(run)
    index = json.loads(rd.checkpoint_index.read_text())
    return torch.load(rd.checkpoints / index["file"], weights_only=True)


def _rewrite(run, payload):
    """Write ``payload`` as the run's checkpoint with a matching digest and index: only its contents are wrong."""
    rd = RunDir(run)
    index = json.loads(rd.checkpoint_index.read_text())
    buf = io.BytesIO()
    torch.save(payload, buf)
    data = buf.getvalue()
    (rd.checkpoints / index["file"]).write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    (rd.checkpoints / index["file"]).with_suffix(".sha256").write_text(digest)
    index.update(sha256=digest, bytes=len(data))
    rd.checkpoint_index.write_text(json.dumps(index))


def _first_moment(p, group="autoencoder", key="exp_avg"):
    state = p["optimizers"][group]["state"]
    return state[min(state)], key


def _wrong_shape(p):
    st, key = _first_moment(p)
    st[key] = torch.zeros(3, 3, 3)


def _nan_step(p):
    st, _ = _first_moment(p, "prior")
    st["step"] = torch.tensor(float("nan"))


def _lr(value):
    def edit(p):
        p["optimizers"]["autoencoder"]["param_groups"][0]["lr"] = value
    return edit


def _drop(path):
    def edit(p):
        obj = p
        for k in path[:-1]:
            obj = obj[k]
        del obj[path[-1]]
    return edit


def _params_list(p):
    p["optimizers"]["prior"]["param_groups"][0]["params"] = p["optimizers"]["prior"]["param_groups"][0]["params"][:-1]


def _rng_size(p):
    p["rng"]["torch"] = p["rng"]["torch"][:100]


def _rng_ranks(p):
    p["rng"]["ranks"] = [{"torch": "not a tensor"}]


def _nan_weight(p):
    key = next(k for k, v in p["model"].items() if v.is_floating_point())
    p["model"][key] = p["model"][key].clone().fill_(float("nan"))


def _scaler(state):
    def edit(p):
        p["scaler"] = state
    return edit


CASES = {
    "an Adam moment of another shape": (_wrong_shape, "autoencoder optimizer state does not fit this run (parameter 0: "
                                                      "'exp_avg' of shape (3, 3, 3)"),
    "a NaN step count": (_nan_step, "prior optimizer state does not fit this run (parameter 0: step count"),
    "a NaN learning rate": (_lr(float("nan")), "field 'optimizers' is not a mapping of update groups"),
    "a learning rate of text": (_lr("fast"), "field 'optimizers' is not"),
    "no param_groups": (_drop(["optimizers", "autoencoder", "param_groups"]), "field 'optimizers' is not"),
    "an update group missing": (_drop(["optimizers", "prior"]), "optimizer states do not fit this run's updates"),
    "a parameter missing from a group": (_params_list, "optimizer states do not fit this run's updates"),
    "an RNG state of another size": (_rng_size, "field 'rng' is not RNG states"),
    "ranks that are not RNG states": (_rng_ranks, "field 'rng' is not RNG states"),
    "a NaN weight": (_nan_weight, "field 'model' is not a state dict (names -> tensors, every value finite)"),
    "a scaler with a NaN scale": (_scaler({"scale": math.nan, "growth_factor": 2.0, "backoff_factor": 0.5,
                                           "growth_interval": 2000, "_growth_tracker": 0}), "field 'scaler' is not"),
    "a scaler missing its fields": (_scaler({"scale": 1.0}), "field 'scaler' is not"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_resume_refuses_a_payload_that_does_not_fit_in_one_line(case, stopped, tmp_path, capsys):
    src, _ = stopped
    run = tmp_path / "run"
    shutil.copytree(src, run)
    edit, needle = CASES[case]
    payload = _payload(run)
    edit(payload)
    _rewrite(run, payload)
    before = {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()}
    assert main(["resume", str(run)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines
    assert {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()} == before  # nothing trained or written


def test_sample_and_eval_refuse_a_nan_model_too(stopped, tmp_path, capsys):
    src, _ = stopped
    run = tmp_path / "run"
    shutil.copytree(src, run)
    payload = _payload(run)
    _nan_weight(payload)
    _rewrite(run, payload)
    assert main(["sample", str(run), "--n", "4", "--out", str(tmp_path / "s.png")]) == 2
    assert "field 'model' is not" in capsys.readouterr().err and not (tmp_path / "s.png").exists()


def test_the_real_payload_passes_and_a_single_process_resumes_a_multi_process_rng(stopped, tmp_path):
    src, want = stopped
    run = tmp_path / "run"
    shutil.copytree(src, run)
    payload = _payload(run)
    check_payload(payload, "ckpt")  # what training/run.py writes is what the schema describes
    payload["rng"]["ranks"] = [dict(payload["rng"]), {"torch": torch.get_rng_state()}]  # as from 2 processes
    _rewrite(run, payload)
    assert main(["resume", str(run)]) == 0
    assert [(r["step"], r.get("autoencoder/loss")) for r in read_metrics(run)] == want  # its own state is used


def test_an_fp16_scaler_state_saved_by_a_disabled_scaler_is_refused():
    scaler = torch.amp.GradScaler("cpu", enabled=True)
    with pytest.raises(CheckpointError, match="gradient-scaler state cannot be used"):
        load_scaler_state(scaler, {}, "run")
    load_scaler_state(scaler, torch.amp.GradScaler("cpu", init_scale=8.0).state_dict(), "run")
    assert scaler.get_scale() == 8.0


def test_load_checkpoint_names_the_field(stopped, tmp_path):
    src, _ = stopped
    run = tmp_path / "run"
    shutil.copytree(src, run)
    payload = _payload(run)
    _rng_size(payload)
    _rewrite(run, payload)
    with pytest.raises(CheckpointError, match=r"field 'rng' is not RNG states .* generator size"):
        load_checkpoint(run)
