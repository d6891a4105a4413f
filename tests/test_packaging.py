"""The package as a user installs it: `python -m build` makes an sdist and a wheel (the wheel built from the
sdist), the wheel carries the configs, and once installed into a fresh venv `latentprior --version` and the
README's first command (the default digits run, cut to 20 steps) work without the source tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

import latentprior

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env | kw.pop("env", {}), timeout=600, **kw)
    assert out.returncode == 0, f"{cmd} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.mark.slow
def test_wheel_installs_and_runs_the_default_config(tmp_path):
    dist = tmp_path / "dist"
    # --no-isolation: build with the setuptools already installed (nothing is downloaded)
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)])
    (wheel,) = dist.glob("latentprior-*.whl")
    (sdist,) = dist.glob("latentprior-*.tar.gz")
    assert wheel.name == f"latentprior-{latentprior.__version__}-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    assert "latentprior/presets/default.yaml" in names and "latentprior/presets/cpu/mnist_vae_flow.yaml" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert any(n.endswith("/CHANGELOG.md") for n in tarfile.open(sdist).getnames())

    # A fresh venv whose only latentprior is the wheel, installed without dependencies and without an index (nothing
    # is downloaded). Only then does a .pth line append this environment's site-packages (torch and the other
    # dependencies) after the venv's own: pip never sees, and so never touches, this environment's packages.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    py = venv / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(wheel)])
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "_parent_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    where = _run([str(py), "-c", "import latentprior; print(latentprior.__file__)"]).stdout.strip()
    assert Path(where).is_relative_to(venv)  # the installed copy, not the source tree
    exe = venv / "bin" / "latentprior"
    assert _run([str(exe), "--version"]).stdout.strip() == f"latentprior {latentprior.__version__}"
    run = tmp_path / "run"
    out = _run([str(exe), "train", "configs/default.yaml", "--out", str(run), "--max-steps", "20", "--set",
                "train.progress=false"], cwd=tmp_path)  # no configs/ here: the copy inside the package is used
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["step"] == 20 and (run / "samples").is_dir()
