"""Shared fixtures: where the development data lives (``../shared``, or the folder named by the
``LATENTPRIOR_TEST_SHARED`` environment variable, for a checkout elsewhere), and a CIFAR-10 built from it once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

def _shared() -> Path | None:
    path = Path(os.environ.get("LATENTPRIOR_TEST_SHARED") or ROOT.parent / "shared")  # data/ and weights/ inside
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_dir() -> Path | None:
    """``../shared`` beside the repository root (or ``$LATENTPRIOR_TEST_SHARED``), or None on a machine without it
    (a user's machine)."""
    return _shared()


@pytest.fixture(scope="session")
def cifar10_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose ``cifar10/cifar-10-batches-py`` holds the JPEG-approximate CIFAR-10 (built once).

    Skips only when ``../shared`` is absent; a shared folder without the builder is a failure.
    """
    shared = _shared()
    if shared is None:
        pytest.skip("../shared is absent: no approximate CIFAR-10 to build")
    script = shared / "data" / "cifar10-jpeg" / "build_batches.py"
    data_dir = tmp_path_factory.mktemp("cifar10-data")
    subprocess.run(
        [sys.executable, str(script), str(data_dir / "cifar10")], check=True, capture_output=True, timeout=300
    )
    return data_dir
