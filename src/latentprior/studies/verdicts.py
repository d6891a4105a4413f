"""Verdicts on a paper's claims from replicated results: holds / does not / not separable from noise.

A claim says that result a is better than result b (lower, or higher, as the metric says). Over replicates
(:class:`~latentprior.studies.replicates.Summary`: mean, sample standard deviation, n) its effect is the
difference of the means in combined standard errors, Welch's t statistic, signed so that a positive effect
is in the claim's direction::

    effect = sign · (mean_a − mean_b) / sqrt(sd_a² / n_a + sd_b² / n_b),    sign = +1 (higher is better), −1 (lower)

and the verdict is ``holds`` for effect >= THRESHOLD, ``does not`` for effect <= −THRESHOLD (the opposite is
measured), ``not separable from noise`` in between, or when a side has fewer than two replicates (no spread).
With 3 seeds a side, Welch's t has 2-4 degrees of freedom, and |t| >= 2 is a one-sided test at about 6-9 %:
a screen against seed noise, not a significance test at 5 %. Paired results (two spaces of one model) are
compared as if independent, which only widens the noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from latentprior.studies.replicates import Summary

__all__ = ["THRESHOLD", "HOLDS", "DOES_NOT", "NOISE", "effect_size", "verdict", "Claim", "claims_markdown",
           "EFFECT_NOTE"]

THRESHOLD = 2.0
HOLDS, DOES_NOT, NOISE = "holds", "does not", "not separable from noise"
EFFECT_NOTE = ("effect = (mean_a - mean_b) / sqrt(sd_a^2/n_a + sd_b^2/n_b) (Welch's t; sd with n - 1), signed "
               f"positive in the claim's direction; holds: effect >= {THRESHOLD:g}, does not: effect <= "
               f"-{THRESHOLD:g}, otherwise not separable from noise (also with fewer than 2 seeds a side)")


def effect_size(a: Summary, b: Summary, better: Literal["lower", "higher"]) -> float | None:
    """The signed effect of "a is better than b" in combined standard errors; None without a spread on a side.

    Equal means give 0; different means with zero spread on both sides give ±inf (a difference without noise).
    """
    if better not in ("lower", "higher"):
        raise ValueError(f"better must be 'lower' or 'higher', got {better!r}")
    if a.std is None or b.std is None:
        return None
    sign = 1.0 if better == "higher" else -1.0
    diff = sign * (a.mean - b.mean)
    se = math.sqrt(a.std ** 2 / a.n + b.std ** 2 / b.n)
    if se == 0.0:
        return 0.0 if diff == 0.0 else math.copysign(math.inf, diff)
    return diff / se


def verdict(effect: float | None, threshold: float = THRESHOLD) -> str:
    """``holds``, ``does not`` or ``not separable from noise`` for a signed effect (None: no spread)."""
    if effect is None or math.isnan(effect):
        return NOISE
    if effect >= threshold:
        return HOLDS
    if effect <= -threshold:
        return DOES_NOT
    return NOISE


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, "a is better than b" on one metric, with both sides' summaries."""

    text: str
    metric: str
    better: Literal["lower", "higher"]
    a_label: str
    a: Summary
    b_label: str
    b: Summary
    paper: str = ""  # the paper's values, for the line

    @property
    def effect(self) -> float | None:
        return effect_size(self.a, self.b, self.better)

    @property
    def verdict(self) -> str:
        return verdict(self.effect)

    def line(self) -> str:
        """One Markdown line: the claim, the verdict, the effect and both sides' mean ± std (n)."""
        e = self.effect
        effect = "no spread to compare" if e is None else f"effect {e:+.2f}"
        arrow = "↓" if self.better == "lower" else "↑"
        paper = f"; paper: {self.paper}" if self.paper else ""
        return (f"- {self.text}: **{self.verdict}** ({effect}; {self.metric} {arrow}: {self.a_label} "
                f"{self.a.text()} vs {self.b_label} {self.b.text()}, n = {self.a.n} / {self.b.n}{paper})")

    def record(self) -> dict[str, Any]:
        """The claim as plain data (claims.json)."""
        e = self.effect
        return {"claim": self.text, "metric": self.metric, "better": self.better, "verdict": self.verdict,
                "effect": None if e is None or not math.isfinite(e) else e,
                "a": {"label": self.a_label, "values": list(self.a.values), "mean": self.a.mean, "std": self.a.std},
                "b": {"label": self.b_label, "values": list(self.b.values), "mean": self.b.mean, "std": self.b.std},
                "paper": self.paper}


def claims_markdown(title: str, claims: list[Claim]) -> str:
    """A section of verdict lines under ``title``, with the definition of the effect."""
    return "\n".join([f"### {title}", "", *(c.line() for c in claims), "", f"_{EFFECT_NOTE}._", ""])
