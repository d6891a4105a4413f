"""Verdicts on claims from replicated results, on constructed numbers: the effect in combined standard errors
(Welch's t), its sign for lower- and higher-is-better metrics, and the three verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from latentprior.config import ConfigError
from latentprior.studies.replicates import Summary, parse_seeds, summarise, summary_rows
from latentprior.studies.verdicts import DOES_NOT, HOLDS, NOISE, Claim, effect_size, verdict


def test_the_summary_is_the_mean_and_the_sample_standard_deviation():
    s = summarise([1.0, None, 2.0, 4.5])  # None: a replicate without the value
    assert s.n == 3 and s.mean == pytest.approx(2.5)
    assert s.std == pytest.approx(np.std([1.0, 2.0, 4.5], ddof=1), rel=1e-12)
    assert summarise([3.0]).std is None and math.isnan(summarise([]).mean)
    assert s.text() == "2.50 ± 1.80" and summarise([3.0]).text() == "3.00"


def test_the_effect_is_the_difference_of_means_over_the_combined_standard_error():
    a, b = Summary((1.0, 2.0, 3.0)), Summary((4.0, 5.0, 7.0))
    se = math.sqrt(1.0 / 3 + np.var([4, 5, 7], ddof=1) / 3)  # sd_a = 1
    assert effect_size(a, b, "lower") == pytest.approx((16 / 3 - 2) / se)  # a is lower: in the claim's direction
    assert effect_size(a, b, "higher") == pytest.approx(-(16 / 3 - 2) / se)
    assert effect_size(b, a, "higher") == pytest.approx((16 / 3 - 2) / se)
    with pytest.raises(ValueError, match="lower' or 'higher"):
        effect_size(a, b, "smaller")


@pytest.mark.parametrize(("a", "b", "better", "want"), [
    ((1.0, 2.0, 3.0), (4.0, 5.0, 6.0), "lower", HOLDS),        # effect 3.67
    ((1.0, 2.0, 3.0), (4.0, 5.0, 6.0), "higher", DOES_NOT),    # effect -3.67: the opposite is measured
    ((1.0, 2.0, 3.0), (2.0, 3.0, 4.0), "lower", NOISE),        # effect 1.22
    ((1.0, 2.0, 3.0), (2.6, 3.6, 4.6), "lower", NOISE),        # effect 1.96, just under the threshold
    ((1.0, 2.0, 3.0), (2.64, 3.64, 4.64), "lower", HOLDS),     # effect 2.01
    ((5.0,), (1.0, 2.0), "lower", NOISE),                      # one seed: no spread to compare
    ((2.0, 2.0), (2.0, 2.0), "higher", NOISE),                 # no difference, no noise: effect 0
    ((3.0, 3.0), (2.0, 2.0), "higher", HOLDS),                 # a difference without noise: effect +inf
])
def test_the_verdict_on_constructed_numbers(a, b, better, want):
    claim = Claim("a beats b", "m", better, "A", Summary(a), "B", Summary(b), "paper 1 vs 2")
    assert claim.verdict == want
    line = claim.line()
    assert line.startswith(f"- a beats b: **{want}** (") and "paper: paper 1 vs 2" in line and "\n" not in line
    assert ("no spread" in line) == (len(a) < 2 or len(b) < 2)
    record = claim.record()
    assert record["verdict"] == want and record["a"]["values"] == list(a)


def test_the_threshold_is_two_combined_standard_errors_both_ways():
    assert verdict(2.0) == HOLDS and verdict(1.999) == NOISE and verdict(-2.0) == DOES_NOT
    assert verdict(-1.999) == NOISE and verdict(None) == NOISE and verdict(float("nan")) == NOISE


def test_summary_rows_group_by_identity_and_summarise_each_field():
    rows = {0: [{"model": "a", "x": 1.0, "y": None}, {"model": "b", "x": 10.0, "y": 1.0}],
            1: [{"model": "a", "x": 3.0, "y": None}, {"model": "b", "x": 14.0, "y": 2.0}],
            2: [{"model": "b", "x": 12.0, "y": 3.0}]}
    a, b = summary_rows(rows, ("model",), ("x", "y"))
    assert (a["model"], a["x_mean"], a["x_std"], a["n"], a["seeds"]) == ("a", 2.0, math.sqrt(2.0), 2, [0, 1])
    assert a["y_mean"] is None and a["y_std"] is None  # no replicate has it
    assert (b["x_mean"], b["x_std"], b["y_mean"], b["n"]) == (12.0, 2.0, 2.0, 3)


@pytest.mark.parametrize(("value", "want"), [("0,1,2", (0, 1, 2)), ([2, 0], (2, 0)), (" 3 ", (3,)), (None, None)])
def test_seed_lists(value, want):
    assert parse_seeds(value, "f") == want


@pytest.mark.parametrize("value", ["0,0", [-1], "a", [True], [1.5], [], "", {"a": 1}])
def test_bad_seed_lists_are_one_line_config_errors(value):
    with pytest.raises(ConfigError, match="^f: seeds must be"):
        parse_seeds(value, "f")
