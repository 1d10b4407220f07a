"""MAGE terminates on degenerate traces (a flat line once looped forever, growing without bound)."""

from __future__ import annotations

import numpy as np

from workbench.metrics import mage


def test_flat_trace_has_no_excursions() -> None:
    times = np.arange(288) * 300.0
    assert mage(np.full(288, 120.0), times) == 0.0


def test_oscillating_trace_still_counts_its_excursions() -> None:
    times = np.arange(288) * 300.0
    values = 100 + 50 * np.sin(np.arange(288) / 288 * 2 * np.pi * 3)  # three 100 mg/dL swings
    assert 50 < mage(values, times) <= 100
