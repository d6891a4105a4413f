"""Reports read runs without torch: importing them, and writing a report of a finished run, imports no torch."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "run_0_1_0"


def test_import_latentprior_reports_does_not_import_torch():
    code = "import sys, latentprior.reports; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"


def test_writing_a_report_imports_no_torch(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "run")
    code = (f"import sys, latentprior.reports as r; r.write_report({str(tmp_path / 'run')!r}, "
            f"{str(tmp_path / 'report')!r}); print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert done.stdout.strip() == "False" and (tmp_path / "report" / "index.html").is_file()
