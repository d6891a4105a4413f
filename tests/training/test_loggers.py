"""train.loggers: MLflow (file store in RUN_DIR/mlruns) and W&B (offline, in RUN_DIR/wandb) get the scalars,
images, config and eval metrics TensorBoard gets, and a resumed run continues the same tracked runs. The real
packages, offline."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from latentprior.config import config_from_dict
from latentprior.rundir import RunDir, read_logger_ids, write_eval_record
from latentprior.training import loggers as loggers_mod
from latentprior.training import train
from latentprior.training.loggers import LoggerUnavailableError, write_summaries

SCALARS = {"autoencoder/loss", "prior/loss", "epoch", "lr/autoencoder", "lr/prior", "images_per_s/joint"}
IMAGES = {"samples", "reconstructions", "interpolation"}


def _cfg(loggers):
    return config_from_dict({
        "data": {"name": "digits"}, "net": {"width": 0.0625}, "prior": {"kind": "realnvp", "layers": 2, "hidden": 16},
        "model": {"latent_dim": 4}, "objective": {"kind": "vae", "lr": 1e-3},
        "train": {"epochs": 0.4, "batch_size": 100, "log_every": 2, "checkpoint_every": 2, "progress": False,
                  "loggers": loggers}})


def wandb_records(path: Path) -> list:
    """The records of a W&B offline ``run-*.wandb`` file: its 7-byte header (':W&B', magic, version), then
    LevelDB-log blocks of 32 KiB whose records are (crc32, length, type) + payload, chunked FULL/FIRST/MIDDLE/LAST."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert struct.unpack("<4sHB", data[:7]) == (b":W&B", 0xBEE1, 0)
    out, pos, pending = [], 7, b""
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if left < 7 or (kind == 0 and length == 0):  # block padding
            pos += left
            continue
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            out.append(record)
    return out


def _wandb_history(rd: RunDir) -> tuple[set[str], dict[str, str], list[str]]:
    """(history keys, summary key -> JSON value, run ids) over every offline run file of the run."""
    keys, summary, ids = set(), {}, []
    for f in sorted(rd.wandb.glob("offline-run-*/run-*.wandb")):
        for r in wandb_records(f):
            kind = r.WhichOneof("record_type")
            if kind == "run":
                ids.append(r.run.run_id)
                assert "model" in {item.key for item in r.run.config.update}  # the run's config
            elif kind == "history":
                keys |= {item.key or "/".join(item.nested_key) for item in r.history.item}
            elif kind == "summary":
                summary |= {item.key or "/".join(item.nested_key): item.value_json for item in r.summary.update}
    return keys, summary, ids


@pytest.mark.slow
def test_mlflow_and_wandb_get_what_tensorboard_gets_and_resume_continues_them(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)  # offline, the default
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))  # W&B's own debug logs
    run = tmp_path / "run"
    rd = RunDir(run)
    cfg = _cfg(["tensorboard", "mlflow", "wandb"])
    train(cfg, run, max_steps=4)
    ids = read_logger_ids(rd)
    assert set(ids) == {"mlflow", "wandb"}
    train(cfg, run)  # resumed: the same tracked runs
    assert read_logger_ids(rd) == ids
    write_eval_record(rd, "fid", {"metric": "fid", "value": 42.5, "protocol": {"n": 10}})
    write_summaries(run)  # what `latentprior eval` does after writing its records

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=rd.mlruns.resolve().as_uri())
    (exp,) = [e for e in client.search_experiments() if e.name == loggers_mod.PROJECT]
    (only,) = client.search_runs([exp.experiment_id])
    assert only.info.run_id == ids["mlflow"]
    got = only.data.metrics
    assert SCALARS <= set(got) and got["eval/fid"] == 42.5 and "final/autoencoder/loss" in got
    assert [m.step for m in client.get_metric_history(ids["mlflow"], "autoencoder/loss")][-1] == 6
    assert only.data.params["model.latent_dim"] == "4" and only.data.params["train.loggers"]
    images = [a.path for a in client.list_artifacts(ids["mlflow"], "images")]
    assert {name for name in IMAGES if any(Path(p).name.startswith(name + "+step+6") for p in images)} == IMAGES

    keys, summary, run_ids = _wandb_history(rd)
    assert set(run_ids) == {ids["wandb"]} and len(run_ids) >= 3  # two training sessions and the eval summary
    assert SCALARS <= keys and {f"{name}/_type" for name in IMAGES} <= keys
    assert json.loads(summary["eval/fid"]) == 42.5 and "final/autoencoder/loss" in summary
    assert len(list(rd.wandb.glob("offline-run-*/files/media/images/samples_*.png"))) >= 2
    assert not any(p for p in run.parent.iterdir() if p.name in ("mlruns", "wandb"))  # all inside the run


def test_a_missing_tracker_is_a_one_line_error(tmp_path, monkeypatch):
    import importlib

    real = importlib.import_module

    def no_mlflow(name, *a, **k):
        if name.startswith("mlflow"):
            raise ImportError("No module named 'mlflow'")
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", no_mlflow)
    with pytest.raises(LoggerUnavailableError, match=r"pip install 'latentprior\[mlflow\]'"):
        loggers_mod.open_loggers(["mlflow"], tmp_path)


def test_old_configs_log_to_tensorboard_alone():
    assert loggers_mod._configured({"train": {"epochs": 1}}) == ["tensorboard"]
    assert _cfg(["tensorboard"]) == config_from_dict({**json.loads(json.dumps({
        "data": {"name": "digits"}, "net": {"width": 0.0625}, "prior": {"kind": "realnvp", "layers": 2, "hidden": 16},
        "model": {"latent_dim": 4}, "objective": {"kind": "vae", "lr": 1e-3},
        "train": {"epochs": 0.4, "batch_size": 100, "log_every": 2, "checkpoint_every": 2, "progress": False}}))})
