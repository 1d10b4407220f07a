"""Grouped quantiles (R type 7) stay exact on equal values and ordered across probabilities.

Regression: `(1 - h) * x + h * x` differs from `x` by an ulp for some values, so the AGP's p05 came out
above its p25 for a time of day where every grid value was equal, and the dbt test
`assert_agp_percentiles_ordered` failed the build (found by the soak test when a patient was added)."""

from __future__ import annotations

import numpy as np

from workbench.metrics import AGP_PERCENTILES, grouped_quantiles

PROBS = [q for _, q in AGP_PERCENTILES]


def test_equal_values_give_that_value_exactly() -> None:
    for value in (100.1, 55.3, 123.456789, 0.1 + 0.2):
        quantiles = grouped_quantiles(np.full(7, value), np.zeros(7, dtype=np.int64), 1, PROBS)
        assert [float(q[0]) for q in quantiles] == [value] * len(PROBS)


def test_quantiles_are_ordered_for_many_random_groups() -> None:
    rng = np.random.default_rng(7)
    groups = rng.integers(0, 500, 20_000)
    values = np.round(
        rng.choice([70.0, 100.1, 100.1, 100.1, 180.3], groups.size) + rng.normal(0, 1e-12, groups.size), 1
    )
    quantiles = np.vstack(grouped_quantiles(values, groups, 500, PROBS))
    present = ~np.isnan(quantiles[0])
    assert np.all(np.diff(quantiles[:, present], axis=0) >= 0)
