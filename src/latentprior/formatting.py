"""Numbers for people: three significant digits, and a mean ± std shown to the same decimal place.

Tables, report pages and console lines all go through here, so a column never shows ``746 ± 0.75`` next to
``743.3 ± 2.3``: both read ``746 ± 1`` and ``743 ± 2``. Exact values stay in the CSV files and eval records.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["decimals", "fmt_value", "fmt_mean_std", "fmt_label", "fmt_metrics"]

DIGITS = 3


def decimals(v: float, digits: int = DIGITS) -> int:
    """Decimal places that show ``v`` to ``digits`` significant digits (0 for |v| >= 10^(digits-1))."""
    if v == 0 or not math.isfinite(v):
        return 0
    return max(0, digits - 1 - math.floor(math.log10(abs(v))))


def _tiny_or_huge(v: float) -> bool:
    return v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e7)


def fmt_value(v: Any, digits: int = DIGITS) -> str:
    """A measured number (metric, time) to ``digits`` significant digits; '–' for a missing one (None, NaN)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, bool) or not isinstance(v, int | float):
        return str(v)
    v = float(v)
    if not math.isfinite(v):
        return str(v)
    if _tiny_or_huge(v):
        return f"{v:.{digits}g}"
    # Round first: 99.96 to 3 digits is "100.0" by its own exponent, but "100" by the rounded one.
    rounded = float(f"{v:.{digits}g}")
    return f"{rounded:.{decimals(rounded, digits)}f}"


def fmt_mean_std(mean: float, std: float, digits: int = DIGITS) -> str:
    """``mean ± std``: the mean to ``digits`` significant digits and the std to the same decimal place (no std
    when it is NaN, e.g. one seed); '–' when the mean is missing."""
    if mean is None or math.isnan(mean):
        return "–"
    text = fmt_value(mean, digits)
    if std is None or math.isnan(std):
        return text
    if _tiny_or_huge(mean):
        return f"{text} ± {std:.{max(1, digits - 1)}g}"
    places = decimals(float(f"{mean:.{digits}g}"), digits)
    return f"{text} ± {std:.{places}f}"


def fmt_label(v: Any) -> str:
    """A setting (β, a latent size, a seed, a name) as written: ``0.001``, ``64``; '' for None."""
    if v is None:
        return ""
    if isinstance(v, float):
        return "–" if math.isnan(v) else f"{v:g}"
    if isinstance(v, list):
        return ",".join(str(x) for x in v)
    return str(v)


def fmt_metrics(values: dict[str, Any], digits: int = DIGITS) -> str:
    """``{"fid": 329.91007, "pr": {"precision": 0.51, ...}}`` as ``fid 330 · pr.precision 0.510 · ...``."""
    parts = []
    for k, v in values.items():
        if isinstance(v, dict):
            parts += [f"{k}.{kk} {fmt_value(vv, digits)}" for kk, vv in v.items() if isinstance(vv, int | float)]
        else:
            parts.append(f"{k} {fmt_value(v, digits)}")
    return " · ".join(parts)
