"""tqdm bars whose percentage is rounded down: 2,399 of 2,400 steps (or 199 of 200 runs) shows 99 %, never
100 % while the last one is still running (tqdm's own format rounds 99.96 % up)."""

from __future__ import annotations

import math

from tqdm.auto import tqdm

__all__ = ["progress_bar", "FLOORED_FORMAT"]

FLOORED_FORMAT = "{l_bar_floor}{bar}{r_bar}"


class _FlooredBar(tqdm):
    @property
    def format_dict(self):
        d = super().format_dict
        total, n = d.get("total"), d.get("n", 0)
        pct = math.floor(100 * n / total) if total else 0
        desc = d.get("prefix") or ""
        d["l_bar_floor"] = f"{desc}: {pct:3d}%|" if desc else f"{pct:3d}%|"
        return d


def progress_bar(**kwargs) -> tqdm:
    """``tqdm(**kwargs)`` with the percentage rounded down (a bar without a total keeps tqdm's own format)."""
    if kwargs.get("total"):
        kwargs.setdefault("bar_format", FLOORED_FORMAT)
    return _FlooredBar(**kwargs)
