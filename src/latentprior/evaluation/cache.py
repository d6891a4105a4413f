"""On-disk cache of reference features and statistics, keyed on everything that changes them.

A key is a flat JSON-able dict — dataset, split, count, a hash of the selected images' bytes, the resize, the
network and its weights hash, the feature implementation. Its canonical JSON (sorted keys) is hashed (sha256)
to the file name, and the JSON itself is stored in the file and compared on load, so a hash collision, a
hand-copied file or a change of key schema is a miss, never a wrong hit. Files are ``.npz`` read with
``allow_pickle=False`` and written atomically (a reader never sees half a file).

Default location ``~/.cache/latentprior/fid``; the environment variable ``LATENTPRIOR_CACHE_DIR`` overrides
it.

Processes that miss the same key at once (a sweep's trials reaching evaluation together) would each spend the
whole reference pass (21 core-minutes for MNIST's 10,000 test images on a CPU) on the same result;
:meth:`FeatureCache.computing` serialises them on a per-key ``flock``, so the second one waits and then reads
the first one's file. The kernel drops the lock when its holder dies, however it dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from latentprior.atomic import atomic_write_bytes

from .statistics import FeatureStatistics

__all__ = ["CACHE_DIR_ENV", "FeatureCache", "cache_key_digest", "default_cache_dir"]

CACHE_DIR_ENV = "LATENTPRIOR_CACHE_DIR"


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "latentprior" / "fid"


def _canonical(key: Mapping) -> str:
    return json.dumps(dict(key), sort_keys=True, separators=(",", ":"), default=str)


def cache_key_digest(key: Mapping) -> str:
    """sha256 of the key's canonical JSON, as 40 hex digits (the file name stem)."""
    return hashlib.sha256(_canonical(key).encode()).hexdigest()[:40]


class FeatureCache:
    """Reference statistics (``kind="statistics"``) and raw features (``kind="features"``) by key."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    def path(self, key: Mapping, kind: str) -> Path:
        return self.root / f"{kind}-{cache_key_digest({**key, 'kind': kind})}.npz"

    @contextlib.contextmanager
    def computing(self, key: Mapping) -> Iterator[None]:
        """Hold the key's lock while computing it: another process computing the same key waits for it. Where
        the lock file cannot be made (a read-only cache), the computation runs unserialised."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fh = open(self.root / f"{cache_key_digest(key)}.lock", "a")  # noqa: SIM115 - closed below
        except OSError:
            yield
            return
        try:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield
        finally:
            fh.close()  # closing the file drops the flock

    def _load(self, key: Mapping, kind: str) -> dict[str, np.ndarray] | None:
        p = self.path(key, kind)
        if not p.is_file():
            return None
        try:
            with np.load(p, allow_pickle=False) as f:
                arrays = {name: f[name] for name in f.files}
        except (OSError, ValueError):  # truncated or foreign file: recompute rather than fail
            return None
        if str(arrays.pop("key_json", "")) != _canonical({**key, "kind": kind}):
            return None
        return arrays

    def _save(self, key: Mapping, kind: str, arrays: dict[str, np.ndarray]) -> Path:
        buf = io.BytesIO()
        np.savez(buf, key_json=np.array(_canonical({**key, "kind": kind})), **arrays)
        p = self.path(key, kind)
        atomic_write_bytes(p, buf.getvalue())
        return p

    def load_statistics(self, key: Mapping) -> FeatureStatistics | None:
        a = self._load(key, "statistics")
        return None if a is None else FeatureStatistics(mu=a["mu"], sigma=a["sigma"], n=int(a["n"]))

    def save_statistics(self, key: Mapping, stats: FeatureStatistics) -> Path:
        return self._save(key, "statistics", {"mu": stats.mu, "sigma": stats.sigma, "n": np.int64(stats.n)})

    def load_features(self, key: Mapping) -> np.ndarray | None:
        a = self._load(key, "features")
        return None if a is None else a["features"]

    def save_features(self, key: Mapping, features: np.ndarray) -> Path:
        return self._save(key, "features", {"features": np.asarray(features, np.float32)})
