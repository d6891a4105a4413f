"""Running a sweep: restart skips finished runs and resumes the interrupted one, retries, changed configs, failures,
progress, Ray, the eval records' sample counts."""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path

import pytest

from latentprior.config import ConfigError, EvalConfig
from latentprior.rundir.checkpoints import latest_checkpoint, load_checkpoint
from latentprior.rundir.sweep_state import SweepState
from latentprior.sweeps import run_sweep, run_trial
from latentprior.sweeps.checks import ChangedRunsError
from latentprior.training import train
from tests.builders import TINY, tiny_spec

ROOT = Path(__file__).resolve().parents[2]


def fake_evaluate(run_dir, eval_cfg, **kwargs):
    """Stands in for evaluate_run: one eval file per metric, its value derived from the checkpoint step."""
    assert isinstance(eval_cfg, EvalConfig)  # the trial hands over a typed config, not loose keywords
    step = latest_checkpoint(Path(run_dir))["step"]
    for m in eval_cfg.metrics:
        path = Path(run_dir) / "eval" / f"{m}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"value": 100.0 + step, "protocol": {"fake": True, "n": eval_cfg.n}}))
    return {m: 100.0 + step for m in eval_cfg.metrics}


def fail_for(payload, needle, log):
    """A trial that always fails for runs whose name contains ``needle``; the others succeed without training."""
    with open(log, "a") as fh:  # an append from any process: how a test counts work done in Ray workers
        fh.write(payload["name"] + "\n")
    if needle in payload["name"]:
        raise RuntimeError(f"deliberate failure of {payload['name']}")
    d = Path(payload["run_dir"]) / "eval"
    d.mkdir(parents=True, exist_ok=True)
    for m in payload["eval"]["metrics"]:
        (d / f"{m}.json").write_text(json.dumps({"value": 1.0, "protocol": "fake"}))
    return {"name": payload["name"], "pid": os.getpid()}


@pytest.mark.slow
def test_restart_skips_finished_runs_and_resumes_the_interrupted_one(tmp_path):
    spec = tiny_spec()  # 4 runs of 6 steps
    calls: list[tuple[str, int]] = []

    def killed_on_third(cfg, run_dir):
        calls.append((Path(run_dir).name, 0))
        if len(calls) == 3:  # the "kill": mid-training of the third run, after two have finished
            train(cfg, run_dir, max_steps=3)
            raise KeyboardInterrupt
        return train(cfg, run_dir)

    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, tmp_path, executor="local", progress=False,
                  trial_fn=functools.partial(run_trial, train_fn=killed_on_third, evaluate_fn=fake_evaluate))
    state = SweepState.open(tmp_path)
    assert state.counts() == {"pending": 1, "running": 0, "done": 2, "failed": 0, "interrupted": 1}
    assert state.runs[calls[2][0]]["status"] == "interrupted"  # stopped by Ctrl-C, not failed
    interrupted = calls[2][0]
    assert latest_checkpoint(tmp_path / "runs" / interrupted)["step"] == 3
    first_seconds = load_checkpoint(tmp_path / "runs" / interrupted)["train_seconds"]

    started: list[tuple[str, int]] = []

    def counting(cfg, run_dir):
        ckpt = latest_checkpoint(Path(run_dir))
        started.append((Path(run_dir).name, ckpt["step"] if ckpt else 0))
        return train(cfg, run_dir)

    result = run_sweep(spec, tmp_path, executor="local", progress=False,
                       trial_fn=functools.partial(run_trial, train_fn=counting, evaluate_fn=fake_evaluate))
    assert (result["skipped"], result["started"], result["done"], result["failed"]) == (2, 2, 4, [])
    assert len(started) == 2 and dict(started)[interrupted] == 3  # resumed from its checkpoint, not redone
    assert {n for n, _ in started}.isdisjoint({n for n, _ in calls[:2]})
    resumed = SweepState.open(tmp_path).runs[interrupted]["result"]
    assert resumed["steps_this_session"] == 3
    # its training time counts both attempts: the final checkpoint's total starts from the first attempt's
    final_seconds = load_checkpoint(tmp_path / "runs" / interrupted)["train_seconds"]
    assert 0 < first_seconds < final_seconds <= resumed["train_total_s"] + 0.005

    again = run_sweep(spec, tmp_path, executor="local", progress=False,
                      trial_fn=functools.partial(run_trial, train_fn=counting, evaluate_fn=fake_evaluate))
    assert (again["skipped"], again["started"], len(started)) == (4, 0, 2)

    started.clear()  # a new FID sample count: every run is evaluated again from its finished checkpoint
    renewed = run_sweep(spec, tmp_path, executor="local", progress=False, eval_n=20,
                        trial_fn=functools.partial(run_trial, train_fn=counting, evaluate_fn=fake_evaluate))
    assert (renewed["skipped"], renewed["started"], renewed["done"]) == (0, 4, 4)
    assert sorted(step for _, step in started) == [6, 6, 6, 6]  # resumed at the end: nothing retrained


def test_failing_trial_is_retried_once_then_marked_failed(tmp_path):
    log = tmp_path / "calls.txt"
    spec = tiny_spec(grid={"objective.beta": [0, 0.1, 1]})
    result = run_sweep(spec, tmp_path / "sweep", executor="local", progress=False,
                       trial_fn=functools.partial(fail_for, needle="beta0.1", log=log))
    calls = log.read_text().split()
    assert calls.count("digits-beta0.1") == 2 and len(calls) == 4
    assert result["failed"] == ["digits-beta0.1"] and result["done"] == 2
    rec = SweepState.open(tmp_path / "sweep").runs["digits-beta0.1"]
    assert (rec["status"], rec["attempts"]) == ("failed", 2)
    assert "deliberate failure of digits-beta0.1" in rec["error"]


def record_and_finish(payload, failures=None, log=None):
    """A trial that writes the run's config (as training would) and an eval file, unless ``failures`` (run name ->
    a list of exceptions to raise, one per attempt) says this attempt fails."""
    if log is not None:
        with open(log, "a") as fh:
            fh.write(payload["name"] + "\n")
    pending = (failures or {}).get(payload["name"])
    if pending:
        raise pending.pop(0)
    run_dir = Path(payload["run_dir"])
    (run_dir / "eval").mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(json.dumps(payload["config"]))  # JSON is YAML
    for m in payload["eval"]["metrics"]:
        (run_dir / "eval" / f"{m}.json").write_text(json.dumps({"value": 1.0, "protocol": {"n": payload["eval"]["n"]}}))
    return {"name": payload["name"]}


@pytest.mark.parametrize("errors, attempts", [
    ([ConfigError("bad"), ConfigError("bad")], 1),  # a user error: a retry would fail the same way
    ([RuntimeError("same"), RuntimeError("same"), RuntimeError("same")], 2),  # the same error twice in a row
    ([RuntimeError("lost worker 1"), RuntimeError("lost worker 2")], 3),  # transient: retried, then succeeds
])
def test_deterministic_failures_are_not_retried(tmp_path, errors, attempts):
    log = tmp_path / "calls.txt"
    spec = tiny_spec(grid={"objective.beta": [0, 1]}, retries=3)
    fn = functools.partial(record_and_finish, failures={"digits-beta1": list(errors)}, log=log)
    result = run_sweep(spec, tmp_path / "sweep", executor="local", progress=False, trial_fn=fn)
    assert log.read_text().split().count("digits-beta1") == attempts
    assert result["failed"] == ([] if attempts == 3 else ["digits-beta1"])
    trial_log = (tmp_path / "sweep" / "runs" / "digits-beta1" / "trial.log").read_text()
    # every failed attempt's whole traceback, not an escaped tail in sweep.json
    assert trial_log.count("Traceback (most recent call last):") == min(attempts, len(errors))
    assert re.search(rf"raise pending.pop\(0\)\n(\w+\.)*{type(errors[0]).__name__}: {errors[0]}\n", trial_log)


def test_changed_config_is_detected_and_rerun_on_request(tmp_path):
    spec = tiny_spec(grid={"objective.beta": [0, 1]})
    out = tmp_path / "sweep"
    run_sweep(spec, out, executor="local", progress=False, trial_fn=record_and_finish)
    changed = tiny_spec(grid={"objective.beta": [0, 1]}, overrides={"net.width": 0.125})
    with pytest.raises(ChangedRunsError, match=r"^2 run\(s\) in .* were made with another config .*digits-beta0 "
                       r"\(net.width: 0.0625 -> 0.125\).*--rerun-changed"):
        run_sweep(changed, out, executor="local", progress=False, trial_fn=record_and_finish)
    # bookkeeping (threads, progress, data location) is not a change
    same = run_sweep(spec, out, executor="local", progress=False, trial_fn=record_and_finish, threads=2,
                     data_dir=str(tmp_path))
    assert (same["skipped"], same["started"]) == (2, 0)
    rerun = run_sweep(changed, out, executor="local", progress=False, trial_fn=record_and_finish, rerun_changed=True)
    assert (rerun["skipped"], rerun["started"], rerun["replaced"]) == (0, 2, ["digits-beta0", "digits-beta1"])
    assert sorted(p.name.split("-2")[0] for p in (out / "replaced").iterdir()) == ["digits-beta0", "digits-beta1"]
    assert SweepState.open(out).runs["digits-beta0"]["attempts"] == 1  # counted afresh


def _sweep_file(tmp_path: Path, **data) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps({"base": TINY, "grid": {"objective.beta": [0, 1]}, **data}))
    return path


@pytest.mark.parametrize("data, message", [
    ({"eval": {"metrics": ["fid", "fidd"], "n": 50}}, r"eval.metrics: unknown metric\(s\) \['fidd'\]"),
    ({"eval": {"metrics": ["fid"], "n": 1000}}, r"eval.n = 1000 exceeds the digits test set \(297 images\)"),
    ({"eval": {"metrics": ["fid"], "n": 50, "n_ref": 300}}, r"eval.n_ref = 300 exceeds the digits test set"),
    ({"eval": {"n": 50}, "models": {"normal": {"prior.kind": "normal", "train.prior_epochs": 1}}},
     r"prior.kind 'normal' is a fixed N\(0, I\) with nothing to train"),
])
def test_bad_sweeps_fail_before_anything_is_created(tmp_path, capsys, monkeypatch, data, message):
    from latentprior.cli import main
    from latentprior.sweeps import trial

    monkeypatch.setattr(trial, "_default_train", lambda *a: pytest.fail("a trial started"))
    out = tmp_path / "out"
    assert main(["sweep", str(_sweep_file(tmp_path, **data)), "--out", str(out), "--local", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and re.search(message, err), err
    assert not out.exists()  # no sweep.json, no run directory


def test_cli_sweep_with_a_failed_run_exits_1_and_lists_it(tmp_path, capsys, monkeypatch):
    from latentprior.cli import main
    from latentprior.sweeps import trial

    def train_fails_for_beta1(cfg, run_dir):
        if cfg.objective.beta == 1:
            raise RuntimeError("out of memory")
        return fake_train(cfg, run_dir)

    monkeypatch.setattr(trial, "_default_train", train_fails_for_beta1)
    monkeypatch.setattr(trial, "_default_evaluate", fake_evaluate)
    sweep = _sweep_file(tmp_path, eval={"metrics": ["fid"], "n": 50})
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", str(sweep), "--out", str(tmp_path / "out"), "--local", "--no-progress"])
    assert exit_.value.code == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1])["failed"] == ["digits-beta1"]
    assert captured.err.splitlines()[-1] == (f"error: 1 of 2 runs failed: digits-beta1 (tracebacks in "
                                            f"{tmp_path / 'out' / 'runs' / 'digits-beta1' / 'trial.log'})")


def fake_train(cfg, run_dir):
    """Stands in for training: a checkpoint index at step 6, enough for :func:`fake_evaluate`."""
    ckpt = Path(run_dir) / "checkpoints"
    ckpt.mkdir(parents=True, exist_ok=True)
    (ckpt / "latest.json").write_text(json.dumps({"file": "step_00000006.pt", "sha256": "0" * 64, "step": 6,
                                                  "bytes": 0}))
    return {"step": 6}


def test_progress_counts_finished_runs():
    from latentprior.sweeps.executor import _Progress

    bar = _Progress("s", total=4, done=1, enabled=True)  # one run skipped as done
    bar.finished(True, "done a")
    bar.finished(False, "FAILED b")
    assert (bar.done, bar.failed, bar.bar.n) == (2, 1, 3)


def test_cli_sweep_local_then_report(tmp_path, monkeypatch, capsys):
    from latentprior.cli import main
    from latentprior.sweeps import trial

    monkeypatch.setattr(trial, "_default_evaluate", fake_evaluate)
    sweep = tmp_path / "s.yaml"
    sweep.write_text(json.dumps({"base": TINY | {"train": TINY["train"] | {"epochs": 0.2}},
                                 "grid": {"objective.beta": [0, 1]}, "eval": {"metrics": ["fid"], "n": 50}}))
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "out"), "--local", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (out["trials"], out["done"], out["executor"]) == (2, 2, "local")
    assert main(["report", str(tmp_path / "out")]) == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rep["with_results"] == 2 and Path(rep["html"]).is_file() and len(rep["plots"]) == 1


@pytest.mark.slow
def test_two_trial_sweep_on_a_local_ray(tmp_path):
    spec = tiny_spec(grid={"objective.beta": [0, 1]}, resources={"threads": 1, "max_concurrent": 2})
    fn = functools.partial(run_trial, evaluate_fn=fake_evaluate)
    result = run_sweep(spec, tmp_path, trial_fn=fn, progress=False)  # starts, then stops, its own Ray
    assert (result["executor"], result["local"], result["cluster_cpus"]) == ("ray", True, 2.0)
    assert (result["done"], result["failed"], result["started"]) == (2, [], 2)
    state = SweepState.open(tmp_path)
    for name in ("digits-beta0", "digits-beta1"):
        rec = state.runs[name]
        assert rec["status"] == "done" and rec["result"]["pid"] != os.getpid()  # ran in a Ray worker
        assert rec["result"]["steps"] == 6 and rec["eval"] == {"fid": 106.0}
    again = run_sweep(spec, tmp_path, trial_fn=fn, progress=False)
    assert (again["skipped"], again["started"]) == (2, 0)


@pytest.mark.slow
def test_failing_trial_on_ray_is_retried_once(tmp_path):
    log = tmp_path / "calls.txt"
    spec = tiny_spec(grid={"objective.beta": [0, 1]}, resources={"threads": 1, "max_concurrent": 2})
    result = run_sweep(spec, tmp_path / "sweep", trial_fn=functools.partial(fail_for, needle="beta1", log=log),
                       progress=False)
    assert result["failed"] == ["digits-beta1"] and result["done"] == 1
    assert sorted(log.read_text().split()) == ["digits-beta0", "digits-beta1", "digits-beta1"]
    rec = SweepState.open(tmp_path / "sweep").runs["digits-beta1"]
    assert rec["attempts"] == 2 and "deliberate failure" in rec["error"]


def test_a_metric_with_another_reference_size_is_not_done(tmp_path):
    """A record computed against min(n, |test|) test images is not the one a sweep asking n_ref = 10000 wants."""
    from latentprior.rundir.eval_records import missing_metrics

    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "fid.json").write_text(json.dumps({"value": 1.0, "protocol": {"n": 50, "n_ref_asked": 0}}))
    assert missing_metrics(tmp_path, EvalConfig(metrics=("fid",), n=50)) == []
    assert missing_metrics(tmp_path, EvalConfig(metrics=("fid",), n=50, n_ref=200)) == ["fid"]


def test_a_metric_is_done_at_its_own_sample_count(tmp_path):
    """PPL and separability state their own n (ppl_n, separability_n), not eval.n: a sweep must not take a run
    that has them for unfinished (and re-run it as failed)."""
    from latentprior.rundir.eval_records import missing_metrics

    ev = EvalConfig(metrics=("fid", "ppl_zt", "separability_zt"), n=50, ppl_n=7, separability_n=8)
    (tmp_path / "eval").mkdir()
    for m, n in (("fid", 50), ("ppl_zt", 7), ("separability_zt", 50)):
        (tmp_path / "eval" / f"{m}.json").write_text(json.dumps({"value": 1.0, "protocol": {"n": n}}))
    assert missing_metrics(tmp_path, ev) == ["separability_zt"]
    assert missing_metrics(tmp_path, ev, ["fid", "ppl_zt"]) == []


