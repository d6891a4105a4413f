"""TensorBoard of a run, read back with TensorBoard's own event accumulator: image previews, per-phase
throughput, learning rates, the config as hparams (with eval metrics), and no step twice after a resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from latentprior.config import config_from_dict
from latentprior.rundir.checkpoints import latest_checkpoint
from latentprior.training import train
from latentprior.training.run import Run
from latentprior.training.tensorboard import flat_config, write_hparams

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402

# digits: 1500 training images, batch 100 -> 15 steps per epoch: 6 joint steps, then 3 prior-only steps
TINY = {"data": {"name": "digits"}, "net": {"width": 0.0625}, "prior": {"kind": "realnvp", "layers": 2, "hidden": 16},
        "model": {"latent_dim": 4}, "objective": {"kind": "vae", "beta": 0.5, "lr": 1e-3, "prior_lr": 5e-4},
        "train": {"epochs": 0.4, "prior_epochs": 0.2, "batch_size": 100, "log_every": 1, "checkpoint_every": 3,
                  "progress": False, "threads": 1}}


def events(logdir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(logdir), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("tb") / "run"
    step = Run.step

    def crash_after_step_5(self):
        if self.steps_done == 5:
            raise RuntimeError("worker lost")
        return step(self)

    with pytest.MonkeyPatch.context() as mp, pytest.raises(RuntimeError, match="worker lost"):
        mp.setattr(Run, "step", crash_after_step_5)
        train(config_from_dict(TINY), run)  # logs steps 1-5, checkpoints step 3, then fails
    assert latest_checkpoint(run)["step"] == 3
    train(config_from_dict(TINY), run)  # the retry: resumes at step 3 and logs 4-9 again
    return run


def test_images_every_checkpoint_and_at_the_end(tiny_run):
    acc = events(tiny_run / "tb")
    assert sorted(acc.Tags()["images"]) == ["interpolation", "reconstructions", "samples"]
    # previews at the checkpoints (3, 6) and at the end (9); the first attempt's step-5 data purged
    assert [e.step for e in acc.Images("samples")] == [3, 6, 9]
    widths = {e.step: (e.width, e.height) for e in acc.Images("samples")}
    assert widths[3] == (8 * 30 + 2, 8 * 30 + 2) and widths[9] == (10 * 30 + 2, 10 * 30 + 2)  # 64, then 100 samples
    (recon,) = {(e.width, e.height) for e in acc.Images("reconstructions")}
    assert recon == (8 * 30 + 2, 2 * 30 + 2)  # the inputs over their reconstructions
    assert (tiny_run / "samples" / "reconstructions.png").is_file()
    assert (tiny_run / "samples" / "interpolation.png").is_file()


def test_no_step_is_logged_twice_after_a_resume(tiny_run):
    acc = events(tiny_run / "tb")
    for tag in acc.Tags()["scalars"]:
        steps = [e.step for e in acc.Scalars(tag)]
        assert steps == sorted(set(steps)), (tag, steps)
    assert [e.step for e in acc.Scalars("autoencoder/loss")] == [1, 2, 3, 4, 5, 6]


def test_throughput_per_phase_and_learning_rates(tiny_run):
    acc = events(tiny_run / "tb")
    assert [e.step for e in acc.Scalars("images_per_s/joint")] == [1, 2, 3, 4, 5, 6]
    assert [e.step for e in acc.Scalars("images_per_s/prior")] == [7, 8, 9]
    assert [e.value for e in acc.Scalars("lr/autoencoder")] == pytest.approx([1e-3] * 9)
    assert [e.value for e in acc.Scalars("lr/prior")] == pytest.approx([5e-4] * 9)


def _session_hparams(logdir: Path) -> dict:
    acc = events(logdir)
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    data = plugin_data_pb2.HParamsPluginData.FromString(content)
    return {k: v.ListFields()[0][1] if v.ListFields() else None for k, v in data.session_start_info.hparams.items()}


def test_config_as_hparams_with_eval_metrics(tiny_run):
    hp = _session_hparams(tiny_run / "tb" / "hparams")
    assert hp["objective.beta"] == 0.5 and hp["prior.kind"] == "realnvp" and hp["train.prior_epochs"] == 0.2
    eval_dir = tiny_run / "eval"
    eval_dir.mkdir(exist_ok=True)
    (eval_dir / "fid.json").write_text(json.dumps({"value": 42.5, "protocol": {"n": 10}}))
    write_hparams(tiny_run)  # what a sweep trial does after evaluating
    acc = events(tiny_run / "tb" / "hparams")
    assert [(e.step, e.value) for e in acc.Scalars("eval/fid")] == [(9, 42.5)]
    assert {"final/autoencoder/loss", "final/prior/loss"} <= set(acc.Tags()["scalars"])
    assert len(list((tiny_run / "tb" / "hparams").glob("events.*"))) == 1  # rewritten, not appended


def test_flat_config():
    assert flat_config({"a": {"b": 1, "c": [1, 2]}, "d": None}) == {"a.b": 1, "a.c": "[1, 2]", "d": "null"}
