"""Table 1's claims over seeds on constructed numbers: which rows each claim compares, the strongest fixed-prior
competitor, and the rate of change of Fig. 8 read back from each replicate's fig8.json."""

from __future__ import annotations

import json

import pytest

from latentprior.studies.disentanglement import _read_flatness, flatness_rows, study_claims
from latentprior.studies.verdicts import DOES_NOT, HOLDS, NOISE


def _rows(seed: int) -> list[dict]:
    """One replicate's Table 1 rows; values move with the seed so every side has a spread."""
    e = 0.01 * seed
    rows = [{"model": m, "space": "", "separability": s + e, "ppl": p + e, "fid": f + e}
            for m, s, p, f in (("vae", 2.0, 5.0, 80.0), ("beta_vae", 1.5, 1.0, 300.0), ("factorvae", 2.5, 6.0, 90.0))]
    for m, (s0, sT, p0, pT, f) in {"flow_b1": (2.6, 1.8, 9.0, 6.0, 70.0),
                                   "flow_b0": (2.2, 1.2, 8.0, 7.0 + e, 60.0)}.items():
        rows += [{"model": m, "space": "z0", "separability": s0 + e, "ppl": p0 + e, "fid": f + e},
                 {"model": m, "space": "zT", "separability": sT + 2 * e, "ppl": pT, "fid": f + e}]
    return rows


def _flat(seed: int) -> dict:
    return {"class_1": {"z0": 3.0 + seed, "zT": 1.5}, "thick": {"z0": 2.0, "zT": 1.2 + 0.1 * seed}}


def test_each_claim_compares_the_rows_the_paper_compares():
    tables, flats = {k: _rows(k) for k in (0, 1, 2)}, {k: _flat(k) for k in (0, 1, 2)}
    claims = {c.text.split(" (")[0]: c for c in study_claims(tables, flats)}
    sep_b1 = claims["β = 0 makes Z_T more linearly separable than β = 1"]
    assert sep_b1.a.values == pytest.approx((1.2, 1.22, 1.24)) and sep_b1.b.values == pytest.approx((1.8, 1.82, 1.84))
    assert sep_b1.verdict == HOLDS and sep_b1.effect == pytest.approx(0.6 / (0.02 * (2 / 3) ** 0.5))
    best = next(c for c in claims.values() if c.text.startswith("the β = 0 flow's Z_T is more linearly separable "
                                                                "than the best"))
    assert best.b_label == "beta_vae" and best.b.values == pytest.approx((1.5, 1.51, 1.52)) and best.verdict == HOLDS
    z0 = claims["the β = 0 flow's Z_T is more linearly separable than its Z_0"]
    assert z0.b.values == pytest.approx((2.2, 2.21, 2.22)) and z0.verdict == HOLDS
    ppl = claims["β = 0 lowers the PPL of Z_T"]
    assert ppl.a.values == pytest.approx((7.0, 7.01, 7.02)) and ppl.b.values == (6.0, 6.0, 6.0)
    assert ppl.verdict == DOES_NOT and ppl.effect == pytest.approx(-1.01 / (0.01 / 3 ** 0.5))  # the opposite holds
    fid = claims["β = 0 improves sample quality"]
    assert fid.a.values == pytest.approx((60.0, 60.01, 60.02)) and fid.verdict == HOLDS
    rate = next(c for c in claims.values() if c.text.startswith("Z_T changes at a steadier rate"))
    # the mean over the attributes per seed: Z_T (1.5 + 1.2 + 0.1 k) / 2, Z_0 (3 + k + 2) / 2
    assert rate.a.values == pytest.approx((1.35, 1.4, 1.45)) and rate.b.values == pytest.approx((2.5, 3.0, 3.5))
    assert rate.verdict == HOLDS


def test_one_seed_gives_no_verdict_beyond_noise():
    claims = study_claims({0: _rows(0)}, {0: _flat(0)})
    assert len(claims) == 7 and {c.verdict for c in claims} == {NOISE}


def test_the_rate_of_change_is_read_from_fig8_json(tmp_path):
    fig8 = {"class_1": {"base": {"median": [1, 2], "max_over_min_median": 2.5}, "z": {"max_over_min_median": 1.25}},
            "thick": {"base": {"max_over_min_median": 1.5}, "z": {"max_over_min_median": 1.75}}}
    (tmp_path / "fig8.json").write_text(json.dumps(fig8))
    flat = _read_flatness(tmp_path / "fig8.json")
    assert flat == {"class_1": {"z0": 2.5, "zT": 1.25}, "thick": {"z0": 1.5, "zT": 1.75}}
    rows = {(r["attribute"], r["space"]): r["flatness"] for r in flatness_rows(flat)}
    assert rows[("mean", "z0")] == 2.0 and rows[("mean", "zT")] == 1.5 and rows[("thick", "zT")] == 1.75
