"""workbench.metrics against values computed by hand (derivations in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from workbench import metrics as m

FIVE_MIN = 300.0


def test_mean_sd_cv_gmi_ea1c_j_index() -> None:
    g = [100, 120, 140]
    # mean 120; deviations −20, 0, 20 → sample variance 800/2 = 400 → SD 20; CV = 100·20/120
    assert m.mean_glucose(g) == 120
    assert m.sd_glucose(g) == pytest.approx(20)
    assert m.cv_glucose(g) == pytest.approx(16.6667, abs=1e-4)
    # GMI = 3.31 + 0.02392·120 = 6.1804; eA1c = (120 + 46.7)/28.7 = 5.8084
    assert m.gmi(g) == pytest.approx(6.1804)
    assert m.ea1c(g) == pytest.approx(5.80836, abs=1e-5)
    # J = 0.001·(120 + 20)² = 19.6
    assert m.j_index(g) == pytest.approx(19.6)
    assert math.isnan(m.sd_glucose([100]))
    assert math.isnan(m.mean_glucose([]))


def test_range_edges_are_inclusive_for_tir_and_strict_for_tbr_tar() -> None:
    assert m.pct_in_range([70, 180, 69, 181]) == 50
    assert m.pct_in_range([70, 140, 141, 69], 70, 140) == 50
    assert m.pct_below([69, 70], 70) == 50
    assert m.pct_below([53, 54], 54) == 50
    assert m.pct_above([180, 181], 180) == 50
    assert m.pct_above([250, 251], 250) == 50


def test_gri_weights_and_cap() -> None:
    # one reading in each of very low, low, high, very high: 3·25 + 2.4·25 + 0.8·25 + 1.6·25 = 195 → 100
    assert m.gri([50, 60, 200, 300]) == 100
    # 25 % low (54–69): 2.4·25 = 60
    assert m.gri([60, 100, 100, 100]) == pytest.approx(60)
    # 25 % high (181–250): 0.8·25 = 20; 25 % very high: 1.6·25 = 40
    assert m.gri([200, 100, 100, 100]) == pytest.approx(20)
    assert m.gri([300, 100, 100, 100]) == pytest.approx(40)


def test_lbgi_hbgi_adrr() -> None:
    # g = 50: ln 50 = 3.91202, ln(3.91202)·1.084 = 1.47864, e^1.47864 = 4.38696,
    # f = 1.509·(4.38696 − 5.381) = −1.50001, rl = 10·f² = 22.50
    assert m.lbgi([50]) == pytest.approx(22.50, abs=0.01)
    assert m.hbgi([50]) == 0
    # g = 200: ln 200 = 5.29832, ·→ e^(1.084·ln 5.29832) = 6.09316, f = 1.509·0.71216 = 1.07465, rh = 11.55..11.61
    assert m.hbgi([200]) == pytest.approx(11.60, abs=0.02)
    # g = 112.5 is (almost exactly) the risk-neutral point: f ≈ 0
    assert m.lbgi([112.5]) + m.hbgi([112.5]) < 1e-4
    # LBGI averages over all readings, zeros included
    assert m.lbgi([50, 200]) == pytest.approx(22.50 / 2, abs=0.01)
    # ADRR: day 1 max rl + max rh = 22.50 + 11.60; day 2 (g = 100, rl = 0.482) → mean of 34.10 and 0.482
    assert m.adrr([50, 200, 100], ["d1", "d1", "d2"]) == pytest.approx((22.50 + 11.60 + 0.482) / 2, abs=0.02)


def _grid(glucose: list[float], times: list[float]) -> list[float]:
    """The grid values of one series up to its last reading (iglu CGMS2DayByDay: from the first
    day's midnight, points at 00:05, 00:10, ...)."""
    grid = m.build_grid(m._one(glucose, times))
    return grid.v[grid.t <= max(times)].tolist()


def test_interpolation_grid_and_gaps() -> None:
    # readings at 00:05 and 00:15 → grid 00:05, 00:10, 00:15 with the midpoint interpolated
    assert _grid([100, 200], [300, 900]) == [100, 150, 200]
    # 50 minutes apart (> 45): nothing interpolated in between
    grid = _grid([100, 200], [300, 3300])
    assert grid[0] == 100 and grid[-1] == 200 and np.isnan(grid[1:-1]).all()
    # the grid is aligned to the day's midnight: readings at 60 s and 660 s give points at 300 s
    # (100 + 240/600·100 = 140) and 600 s (190); a reading at midnight itself is on no point
    assert _grid([100, 200], [60, 660]) == [140, 190]
    assert _grid([100, 200], [0, 600]) == [150, 200]


def test_modd_is_mean_absolute_day_to_day_difference() -> None:
    t = np.arange(0, 2 * 86400, FIVE_MIN)
    day = np.sin(np.arange(288) / 288 * 2 * np.pi) * 40 + 140
    g = np.concatenate([day, day + 10])  # day 2 is day 1 shifted up by 10
    assert m.modd(g, t) == pytest.approx(10)
    assert math.isnan(m.modd(day, t[:288]))  # less than a day: no pairs 24 h apart


def test_conga_is_sd_of_hourly_differences() -> None:
    # 100 in even hours, 110 in odd hours over 4 h: the 36 differences g(t) − g(t − 1 h) are
    # +10 (hours 1 and 3, 24 values) and −10 (hour 2, 12 values): mean 10/3,
    # SD = sqrt((24·(20/3)² + 12·(40/3)²)/35) = sqrt(3200/35) = 9.5618 (the hours start at 00:05,
    # the first point of iglu's grid)
    t = np.arange(FIVE_MIN, 4 * 3600 + FIVE_MIN, FIVE_MIN)
    g = np.where(((t - FIVE_MIN) // 3600) % 2 == 0, 100.0, 110.0)
    assert m.conga(g, t, 1) == pytest.approx(math.sqrt(3200 / 35))


def _triangle(hours: float, low: float, high: float, start: float = FIVE_MIN) -> tuple[np.ndarray, np.ndarray]:
    """Triangle wave low → high → low with a 6 h period, starting and ending at a nadir (by default
    at 00:05, the first point of iglu's grid)."""
    t = np.arange(0, hours * 3600 + 1, FIVE_MIN)
    phase = (t / 3600) % 6
    g = np.where(phase < 3, low + phase / 3 * (high - low), high - (phase - 3) / 3 * (high - low))
    return g, t + start


def test_mage_of_a_regular_triangle_wave_is_its_amplitude() -> None:
    # every excursion (nadir → peak and peak → nadir) is 200 − 100 = 100 and exceeds the SD (~29)
    g, t = _triangle(18, 100, 200)
    assert m.mage(g, t) == pytest.approx(100)


def test_mage_ignores_ripples_smaller_than_the_sd() -> None:
    g, t = _triangle(18, 100, 200)
    rippled = g + 5 * np.sin(t / 600)  # ±5 mg/dL wiggles every ~1 h: not excursions
    assert m.mage(rippled, t) == pytest.approx(100, abs=1)


def test_mage_weights_segments_split_at_long_gaps_by_duration() -> None:
    # two 18 h segments 4 h apart (> 180 min → split): amplitudes 100 and 50, equal weight → 75
    g1, t1 = _triangle(18, 100, 200)
    g2, t2 = _triangle(18, 100, 150, start=t1[-1] + 4 * 3600)
    assert m.mage(np.r_[g1, g2], np.r_[t1, t2]) == pytest.approx(75)


def test_mage_needs_enough_points() -> None:
    g, t = _triangle(1, 100, 200)  # 13 grid points < 32 (long moving average)
    assert math.isnan(m.mage(g, t))


def test_pct_readings_present() -> None:
    assert m.pct_readings_present(288, 1) == 100
    assert m.pct_readings_present(144, 1) == 50
    assert m.pct_readings_present(2016, 14) == pytest.approx(50)
    assert m.pct_readings_present(300, 1) == 100  # 25-hour day: capped


def test_summarize_ties_the_ranges_together() -> None:
    g, t = _triangle(48, 50, 300)
    s = m.summarize(g, t, (t // 86400).astype(int))
    parts = s.pct_very_low + s.pct_low + s.pct_in_range + s.pct_high + s.pct_very_high
    assert parts == pytest.approx(100)
    assert s.pct_below_70 == pytest.approx(s.pct_very_low + s.pct_low)
    assert s.mage == pytest.approx(250, abs=1)
    assert s.reading_count == len(g)
