"""The public API: every name in ``latentprior.__all__`` imports and has its section in docs/api.md, and importing
the package imports no torch (the names load on first use)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import latentprior

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def _headings() -> list[str]:
    return [line for line in DOC.read_text().splitlines() if line.startswith("#")]


@pytest.mark.parametrize("name", latentprior.__all__)
def test_every_public_name_imports_and_has_a_section_in_the_api_reference(name):
    assert getattr(latentprior, name) is not None
    documented = [h for h in _headings() if re.search(rf"`{re.escape(name)}(`|\()", h)]
    assert documented, f"docs/api.md has no heading for `{name}`"


def test_the_check_finds_an_undocumented_name(monkeypatch):
    monkeypatch.setitem(latentprior._HOME, "NotDocumented", "api")
    assert not [h for h in _headings() if re.search(r"`NotDocumented(`|\()", h)]
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        latentprior.nothing_here  # noqa: B018


def test_importing_the_package_imports_no_torch():
    code = ("import sys, latentprior; names = dir(latentprior); "
            "print('torch' in sys.modules, all(n in names for n in latentprior.__all__))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == ["False", "True"]
