"""What a sweep prints: rounded result lines, a bar that reads 100 % only when every run has finished, and
training times where the total over attempts is never below the last attempt's."""

from __future__ import annotations

import io
import json
from pathlib import Path

from latentprior.progress_bar import progress_bar
from latentprior.sweeps.executor import run_sweep
from latentprior.sweeps.grid import sweep_from_dict
from latentprior.sweeps.trial import _train_total

ROOT = Path(__file__).resolve().parents[2]


def _writes_eval(payload):
    """A trial that trains nothing and writes a long-decimal FID, as evaluate_run would."""
    path = Path(payload["run_dir"]) / "eval" / "fid.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"value": 329.91007625251206, "protocol": {"n": payload["eval"]["n"]}}))
    return {"name": payload["name"]}


def test_sweep_result_lines_are_rounded(tmp_path, capsys):
    spec = sweep_from_dict({"name": "t", "base": {"data": {"name": "digits"}}, "grid": {"objective.beta": [0]},
                            "eval": {"metrics": ["fid"], "n": 10}}, ROOT / "configs")
    run_sweep(spec, tmp_path, executor="local", trial_fn=_writes_eval, progress=False)
    out = capsys.readouterr().out
    line = next(li for li in out.splitlines() if li.startswith("done"))
    assert line.endswith("fid 330") and "329.91" not in out, out


def test_bar_reads_100_percent_only_at_the_end():
    text = io.StringIO()
    bar = progress_bar(total=200, initial=199, desc="sweep s", file=text)
    assert " 99%|" in str(bar)
    bar.update(1)
    assert "100%|" in str(bar)
    bar.close()
    assert progress_bar(total=3, file=io.StringIO(), desc="").format_dict["l_bar_floor"] == "  0%|"


def test_total_training_time_includes_the_whole_last_attempt():
    # 40 s of loop in earlier attempts, 10 s of loop now inside a 13 s attempt (opening the run, previews)
    assert _train_total({"train_s_total": 50.0, "wall_s": 10.0}, 13.0) == 53.0
    # a run that was already trained: no loop now, the attempt only opened it
    assert _train_total({"train_s_total": 50.0, "wall_s": 0.0}, 1.5) == 51.5
    assert _train_total({}, 3.0) is None
