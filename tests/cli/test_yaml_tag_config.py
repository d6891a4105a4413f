"""A run whose ``config.yaml`` holds a YAML tag (``!!python/object/apply:os.system``): ``eval`` and ``report`` refuse in
one line naming the file, exit 2, run nothing from it and compute or write nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from latentprior.cli import main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "run_0_1_0"


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def tagged_run(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    marker = tmp_path / "pwned"
    (run / "config.yaml").write_text(f'!!python/object/apply:os.system ["touch {marker}"]\n')
    return run, marker


@pytest.mark.parametrize("verb", [["eval", "{run}", "--metrics", "nll", "--n", "12", "--nll-k", "2"],
                                  ["report", "{run}"], ["report", "{run}", "--out", "{run}/../rep"]])
def test_a_yaml_tag_in_config_is_refused_before_any_work(verb, tagged_run, capsys):
    run, marker = tagged_run
    before = _tree(run.parent)
    assert main([a.format(run=run) for a in verb]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {run / 'config.yaml'}: not valid YAML"), lines
    assert "python/object/apply" in lines[0]
    assert not marker.exists()
    assert _tree(run.parent) == before  # no eval record at n=12, no tb/hparams, no report folder


@pytest.mark.slow
def test_the_command_itself_exits_2_with_one_line(tagged_run):
    run, marker = tagged_run
    before = _tree(run.parent)
    for args in (["eval", str(run), "--metrics", "nll", "--n", "12"], ["report", str(run)]):
        done = subprocess.run([sys.executable, "-m", "latentprior.cli", *args], capture_output=True, text=True,
                              timeout=300)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and "config.yaml: not valid YAML" in lines[0], done.stderr
        assert done.stdout == ""
    assert not marker.exists() and _tree(run.parent) == before
