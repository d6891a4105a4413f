"""latentprior.formatting: three significant digits, and a std at its mean's decimal place."""

from __future__ import annotations

import math

import pytest

from latentprior.formatting import fmt_label, fmt_mean_std, fmt_metrics, fmt_value


@pytest.mark.parametrize("mean, std, text", [
    (746.0, 0.75, "746 ± 1"), (743.3, 2.3, "743 ± 2"), (24.35, 1.214, "24.4 ± 1.2"),
    (0.21534, 0.02478, "0.215 ± 0.025"), (0.0123, 0.0011, "0.0123 ± 0.0011"), (99.96, 0.3, "100 ± 0"),
    (5.0, math.nan, "5.00"), (math.nan, 1.0, "–"),
])
def test_mean_and_std_share_their_decimal_place(mean, std, text):
    assert fmt_mean_std(mean, std) == text


@pytest.mark.parametrize("v, text", [(329.91007625251206, "330"), (0.5, "0.500"), (12.345, "12.3"), (3, "3.00"),
                                     (0.000123, "0.000123"), (math.nan, "–"), (None, "–"), (-1.5, "-1.50")])
def test_values_have_three_significant_digits(v, text):
    assert fmt_value(v) == text


def test_labels_are_written_as_given_and_metric_dicts_are_flattened():
    assert [fmt_label(v) for v in (0.001, 64, "vae", None, [0, 1])] == ["0.001", "64", "vae", "", "0,1"]
    assert fmt_metrics({"fid": 329.91007625251206, "pr": {"precision": 0.51234, "recall": 0.2}}) == \
        "fid 330 · pr.precision 0.512 · pr.recall 0.200"
