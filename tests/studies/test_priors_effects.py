"""The priors study's comparisons over seeds: which pairs are compared, and Welch's effect on known values."""

from __future__ import annotations

import json
import math

import pytest

from latentprior.studies.priors_effects import effect_claims, write_effects
from latentprior.studies.verdicts import DOES_NOT, HOLDS, NOISE


def _rows(fids: dict[str, list[float]], dim: int = 64, beta: float = 0.0) -> list[dict]:
    return [{"prior": p, "label": p.upper(), "latent_dim": dim, "beta": beta, "seed": s, "fid": v}
            for p, values in fids.items() for s, v in enumerate(values)]


def test_each_prior_against_the_reference_and_the_best_against_the_runner_up() -> None:
    rows = _rows({"joint": [34.0, 33.0, 35.0], "glow": [28.0, 28.5, 27.5], "two": [29.0, 30.0, 29.5]})
    claims = effect_claims(rows, "joint")
    assert [(c.a_label, c.b_label) for c in claims] == [("GLOW", "JOINT"), ("TWO", "JOINT"), ("GLOW", "TWO")]
    glow, two = claims[0], claims[2]
    # Welch: (34 - 28) / sqrt(1/3 + 0.25/3)
    assert glow.effect == pytest.approx(6.0 / math.sqrt(1 / 3 + 0.25 / 3))
    assert glow.verdict == HOLDS
    assert two.effect == pytest.approx(1.5 / math.sqrt(0.25 / 3 + 0.25 / 3))
    assert "latent 64, β = 0" in glow.text


def test_no_extra_pair_when_the_reference_is_among_the_best_two() -> None:
    claims = effect_claims(_rows({"joint": [20.0, 21.0], "gmm": [40.0, 44.0], "vamp": [90.0, 95.0]}), "joint")
    assert [(c.a_label, c.b_label) for c in claims] == [("GMM", "JOINT"), ("VAMP", "JOINT")]
    assert all(c.verdict == DOES_NOT for c in claims)


def test_single_seed_cells_and_missing_fids_give_no_claim() -> None:
    rows = _rows({"joint": [34.0], "glow": [28.0]}) + _rows({"joint": [30.0, 31.0], "glow": [29.0, float("nan")]},
                                                           beta=1.0)
    assert effect_claims(rows, "joint") == []


def test_cells_are_compared_separately(tmp_path) -> None:
    rows = (_rows({"joint": [34.0, 33.0, 35.0], "post": [34.5, 33.0, 35.5]})
            + _rows({"joint": [60.0, 61.0, 62.0], "post": [50.0, 52.0, 51.0]}, beta=1.0))
    claims = effect_claims(rows, "joint")
    assert [c.verdict for c in claims] == [NOISE, HOLDS]
    files = write_effects(tmp_path, 2000, claims)
    assert [f.name for f in files] == ["priors_effects_n2000.md", "priors_effects_n2000.json"]
    records = json.loads(files[1].read_text())
    assert [r["b"]["values"] for r in records] == [[34.0, 33.0, 35.0], [60.0, 61.0, 62.0]]
    assert "β = 1" in files[0].read_text().splitlines()[3]
    assert write_effects(tmp_path / "none", 2000, []) == []
