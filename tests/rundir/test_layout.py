"""The run directory has one owner: no module outside ``latentprior.rundir`` spells its file names, and a name read
from a file cannot leave its root."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from latentprior.rundir import RunDir, SweepDir, UnsafePathError, child_name, inside

SRC = Path(__file__).resolve().parents[2] / "src" / "latentprior"

# The names that only rundir/ may spell (in a string constant, alone or inside a path, a glob pattern or a message).
OWNED = re.compile(r"config\.yaml|config_history\.jsonl|metrics\.jsonl|latest\.json|sweep\.json|run\.lock|trial\.log|"
                   r"checkpoints|step_(\d|\{|\*)|\.sha256|samples\.png|reconstructions\.png|interpolation\.png|"
                   r"loggers\.json")


def _constants(tree: ast.AST) -> list[tuple[int, str]]:
    """String constants of a module except docstrings (which may describe the layout in words)."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]


def test_no_module_outside_rundir_spells_a_run_directory_file_name():
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.parent.name == "rundir":
            continue
        for line, text in _constants(ast.parse(path.read_text(), str(path))):
            hits = [m.group(0) for m in OWNED.finditer(text)]
            if hits:
                offenders.append(f"{path.relative_to(SRC)}:{line}: {text!r} spells {hits}")
    assert not offenders, "\n".join(offenders)


def test_the_check_finds_a_planted_name(tmp_path):
    tree = ast.parse('"""Writes config.yaml (a docstring may say so)."""\nPATH = "runs/x/metrics.jsonl"\n')
    assert [t for _, t in _constants(tree) if OWNED.search(t)] == ["runs/x/metrics.jsonl"]


@pytest.mark.parametrize("name", ["..", ".", "../x", "a/b", "/abs", "", ".hidden", "a\\b", "x" * 300, None, 3, "a\0b"])
def test_unsafe_names_are_refused_in_one_line(name):
    with pytest.raises(UnsafePathError) as e:
        child_name(name, "run name", "sweep.json")
    assert "\n" not in str(e.value) and "run name" in str(e.value)


@pytest.mark.parametrize("name", ["mnist-vae_flow-beta0.1-seed0", "a+b=c", "run_1", "x.y"])
def test_plain_names_pass(name):
    assert child_name(name, "run name") == name


def test_sweep_runs_and_eval_records_stay_inside(tmp_path):
    sweep = SweepDir(tmp_path)
    assert sweep.run("r1").path == tmp_path / "runs" / "r1"
    with pytest.raises(UnsafePathError):
        sweep.run("../../../../tmp/x")
    with pytest.raises(UnsafePathError):
        RunDir(tmp_path).eval_record("../config")
    (tmp_path / "inner").mkdir()
    (tmp_path / "link").symlink_to("/")
    assert inside(tmp_path, tmp_path / "inner") == (tmp_path / "inner").resolve()
    with pytest.raises(UnsafePathError):
        inside(tmp_path, tmp_path / "link" / "etc")
