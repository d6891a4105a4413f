"""Which prior wins, in standard errors: the priors study's FID comparisons over seeds.

For every (latent dim, β) with at least two seeds on both sides, each prior is compared with the study's
``autoencoder`` entry (the joint prior whose autoencoder every ex-post prior is fitted on: the paper's RealNVP in
the shipped studies), and the prior with the lowest mean FID with the runner-up. Each comparison is a
:class:`~latentprior.studies.verdicts.Claim` "a has a lower FID than b" with Welch's effect, so a reader gets the
plain answer (holds, does not, not separable from noise) and its size in the same units as the other studies.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from latentprior.reports.tables import write_text
from latentprior.studies.replicates import Summary, summarise
from latentprior.studies.verdicts import Claim, claims_markdown

__all__ = ["effect_claims", "write_effects"]


def _fids(rows: list[dict[str, Any]]) -> dict[tuple[int, float], dict[str, tuple[str, Summary]]]:
    """(latent dim, β) -> prior -> (label, FID over seeds), in the rows' order."""
    cells: dict[tuple[int, float], dict[str, tuple[str, list[float]]]] = {}
    for r in rows:
        label, values = cells.setdefault((r["latent_dim"], r["beta"]), {}).setdefault(r["prior"], (r["label"], []))
        if not math.isnan(r["fid"]):  # a seed without an FID record adds no value
            values.append(r["fid"])
    return {cell: {p: (label, summarise(values)) for p, (label, values) in priors.items()}
            for cell, priors in cells.items()}


def effect_claims(rows: list[dict[str, Any]], reference: str) -> list[Claim]:
    """The comparisons (module docstring) from the per-seed rows of
    :func:`latentprior.studies.priors_outputs.seed_rows`, against the prior named ``reference``; none for a cell
    with a single seed."""
    claims = []
    for (dim, beta), priors in _fids(rows).items():
        spread = {p: s for p, s in priors.items() if s[1].n >= 2}
        where = f"latent {dim}, β = {beta:g}"
        pairs = [(p, reference) for p in spread if p != reference] if reference in spread else []
        ranked = sorted(spread, key=lambda p: spread[p][1].mean)
        if len(ranked) >= 2 and reference not in ranked[:2]:  # else already among the pairs
            pairs.append((ranked[0], ranked[1]))
        for a, b in pairs:
            (a_label, a_fid), (b_label, b_fid) = spread[a], spread[b]
            claims.append(Claim(f"{a_label} has a lower FID than {b_label} ({where})", "FID", "lower",
                                a_label, a_fid, b_label, b_fid))
    return claims


def write_effects(dest: Path, n: int, claims: list[Claim]) -> list[Path]:
    """``priors_effects_n<n>.md`` (one verdict line per comparison) and ``.json`` (the values behind each);
    nothing when no cell has two seeds."""
    if not claims:
        return []
    text = claims_markdown(f"FID over seeds ({n} samples): each prior against the study's autoencoder entry, and "
                           "the best against the runner-up", claims)
    records = json.dumps([c.record() for c in claims], indent=2) + "\n"
    return [write_text(dest / f"priors_effects_n{n}.md", text), write_text(dest / f"priors_effects_n{n}.json",
                                                                           records)]
