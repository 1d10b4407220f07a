"""Every iglu metric of workbench.metrics (vectorised over groups) against hand-computed values and
against an independent per-series recomputation (tests/transform/iglu_reference.py) on simulated
traces with gaps, DST days, flat traces, single readings and the sensor limits 40/400, to 1e-9."""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from tests.transform import iglu_reference as ref
from workbench import metrics as m

TOL = 1e-9


def _series(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    """(epoch seconds, mg/dL, zone) of one simulated trace."""
    if kind == "dst_spring":  # Europe/Berlin, across 2026-03-29 (23-hour day)
        tz, start = "Europe/Berlin", datetime(2026, 3, 27, 7, 3, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()
        n = 5 * 288
    elif kind == "dst_fall":  # America/New_York, starting ON 2026-11-01 (25-hour day) after the change
        tz, start = "America/New_York", datetime(2026, 11, 1, 4, 2, 30, tzinfo=ZoneInfo("America/New_York")).timestamp()
        n = 4 * 288
    else:
        tz, start = "UTC", 1_780_000_000.0 + 123.0
        n = {"gaps": 6 * 288, "flat": 600, "limits": 3 * 288, "single": 1, "two": 2, "short": 40}[kind]
    t = start + np.arange(n) * 300.0 + rng.normal(0, 8, n)
    phase = np.arange(n) / 37.0
    g = 140 + 90 * np.sin(phase) + 25 * np.sin(phase * 3.1) + rng.normal(0, 6, n)
    if kind == "gaps":
        drop = np.zeros(n, dtype=bool)
        drop[100:108] = True  # 45 min
        drop[300:311] = True  # ~1 h: not interpolated
        drop[700:760] = True  # 5 h: MAGE splits the trace
        drop[1200:1550] = True  # > 1 day
        t, g = t[~drop], g[~drop]
    if kind == "flat":
        g = np.full(t.size, 112.0)
    if kind == "limits":
        g = np.clip(g * 1.8 - 60, 40, 400)
    g = np.clip(np.round(g), 40, 400)  # CGM values are integers within the sensor limits
    return t, g, tz


KINDS = ["gaps", "dst_spring", "dst_fall", "flat", "limits", "single", "two", "short"]


@pytest.fixture(scope="module")
def computed() -> tuple[dict[str, np.ndarray], list[dict[str, float]]]:
    rng = np.random.default_rng(15)
    ts, gs, groups, days, offs, zones, refs = [], [], [], [], [], [], []
    for gi, kind in enumerate(KINDS):
        t, g, tz = _series(kind, rng)
        d, o = ref.local_parts(t, tz)
        ts.append(t), gs.append(g), days.append(d), offs.append(o), zones.append(tz)
        groups.append(np.full(t.size, gi))
        refs.append(ref.metrics(t, g, tz))
    order = np.random.default_rng(0).permutation(sum(x.size for x in ts))  # input order must not matter
    cat = [np.concatenate(x)[order] for x in (groups, ts, gs, days, offs)]
    r = m.GroupedReadings.build(*cat, n_groups=len(KINDS), group_tz=zones)
    return m.all_metrics(r), refs


COLUMNS = [
    "mean_glucose", "sd_glucose", "cv_glucose", "min_glucose", "q1_glucose", "median_glucose", "q3_glucose",
    "max_glucose", "range_glucose", "iqr_glucose", "pct_63_140", "pct_above_140", "grade", "grade_hypo",
    "grade_eugly", "grade_hyper", "m_value", "mad", "cogi", "hyper_index", "hypo_index", "igc", "active_percent",
    "modd", "conga_1", "conga_24", "mag", "gvp", "sd_roc", "cv_mean", "cv_sd", "sd_w", "sd_hhmm", "sd_dm", "sd_b",
    "sd_b_dm", "sd_ws_h", "auc_hourly", "hypo_lv1_per_day", "hypo_lv2_per_day", "hypo_extended_per_day",
    "hyper_lv1_per_day", "hyper_lv2_per_day", "hypo_lv1_excl_per_day", "hyper_lv1_excl_per_day", "pgs",
]  # fmt: skip


@pytest.mark.parametrize("column", COLUMNS)
def test_vectorised_equals_independent_recomputation(computed, column: str) -> None:
    got, refs = computed
    for gi, kind in enumerate(KINDS):
        want, have = refs[gi][column], float(got[column][gi])
        if isinstance(want, float) and math.isnan(want):
            assert math.isnan(have), (kind, column, have)
        else:
            assert have == pytest.approx(want, rel=TOL, abs=TOL), (kind, column)


def test_the_traces_exercise_what_they_should(computed) -> None:
    got, refs = computed
    gaps = KINDS.index("gaps")
    assert refs[gaps]["hypo_lv1_per_day"] > 0 and refs[gaps]["hyper_lv2_per_day"] > 0
    assert refs[gaps]["active_percent"] < 80
    assert got["sd_glucose"][KINDS.index("flat")] == 0 and got["gvp"][KINDS.index("flat")] == 0
    assert got["min_glucose"][KINDS.index("limits")] == 40 and got["max_glucose"][KINDS.index("limits")] == 400
    assert math.isnan(got["sd_glucose"][KINDS.index("single")])
    fall = refs[KINDS.index("dst_fall")]["_grid"]
    assert fall.shape[0] == 5  # 4 days of readings from the local midnight: 5 rows as iglu


def test_episode_rows_match_the_reference(computed) -> None:
    rng = np.random.default_rng(15)
    t, g, tz = _series("gaps", rng)
    d, o = ref.local_parts(t, tz)
    r = m.GroupedReadings.build(np.zeros(t.size), t, g, d, o, group_tz=[tz])
    grid = m.build_grid(r)
    ep = m.episodes_of(grid)
    want = ref.metrics(t, g, tz)["_episodes"]
    for key, (kind, level) in {"hypo1": ("hypo", "1"), "hypo2": ("hypo", "2"), "hypoext": ("hypo", "extended"),
                               "hyper1": ("hyper", "1"), "hyper2": ("hyper", "2")}.items():  # fmt: skip
        sel = (ep.type == kind) & (ep.level == level)
        assert list(zip(ep.first[sel].tolist(), ep.last[sel].tolist(), strict=True)) == want[key], key
    sel = (ep.type == "hypo") & (ep.level == "1") & ep.exclusive
    assert list(zip(ep.first[sel].tolist(), ep.last[sel].tolist(), strict=True)) == want["hypo1excl"]


# ---- hand-computed fixtures ------------------------------------------------------------------


def _one(t: list[float], g: list[float]) -> dict[str, np.ndarray]:
    n = len(t)
    tt = np.array(t, dtype=float)
    return m.all_metrics(m.GroupedReadings.build(np.zeros(n), tt, g, (tt // 86400).astype(int), np.zeros(n)))


def test_hand_computed_distribution_metrics() -> None:
    out = _one([0, 300, 600, 900], [60, 100, 150, 250])
    # quantiles type 7: q1 = 60 + 0.75*(100-60) = 90; median 125; q3 = 150 + .25*100 = 175
    assert out["q1_glucose"][0] == 90 and out["median_glucose"][0] == 125 and out["q3_glucose"][0] == 175
    assert out["iqr_glucose"][0] == 85 and out["range_glucose"][0] == 190
    # MAD: |g - 125| = 65, 25, 25, 125 -> median 45 -> 1.4826 * 45
    assert out["mad"][0] == pytest.approx(1.4826 * 45, abs=1e-12)
    # hyper index: ((150-140)^1.1 + (250-140)^1.1) / (4*30); hypo index: (80-60)^2 / (4*30)
    assert out["hyper_index"][0] == pytest.approx((10**1.1 + 110**1.1) / 120, abs=1e-12)
    assert out["hypo_index"][0] == pytest.approx(400 / 120, abs=1e-12)
    assert out["pct_63_140"][0] == 25 and out["pct_above_140"][0] == 50
    # M-value (r = 90): mean of 1000 |log10(g/90)|^3
    want = np.mean([1000 * abs(math.log10(x / 90)) ** 3 for x in (60, 100, 150, 250)])
    assert out["m_value"][0] == pytest.approx(want, abs=1e-12)
    grade = [min(425 * (math.log10(math.log10(x / 18)) + 0.16) ** 2, 50) for x in (60, 100, 150, 250)]
    assert out["grade"][0] == pytest.approx(sum(grade) / 4, abs=1e-12)
    assert out["grade_hypo"][0] == pytest.approx(100 * grade[0] / sum(grade), abs=1e-12)


def test_hand_computed_grid_and_active_percent() -> None:
    # readings every 5 minutes on the grid: 0:05 .. 0:25 of day 0, values 100, 110, 130, 100, 100
    t = [300.0 * k for k in range(1, 6)]
    out = _one(t, [100, 110, 130, 100, 100])
    # MAG: (10 + 20 + 30 + 0) / (4 * 5/60) = 180 mg/dL/h
    assert out["mag"][0] == pytest.approx(180.0, abs=1e-12)
    # GVP: (sqrt(25+100) + sqrt(25+400) + sqrt(25+900) + 5) / 20 - 1
    want = (math.sqrt(125) + math.sqrt(425) + math.sqrt(925) + 5) / 20 - 1
    assert out["gvp"][0] == pytest.approx(100 * want, abs=1e-12)
    # active percent: a 20-minute hole in 5-minute data (3 missing of 9)
    out = _one([0, 300, 600, 1800, 2100, 2400], [100] * 6)
    assert out["active_percent"][0] == pytest.approx(100 * (9 - 3) / 9, abs=1e-12)


def test_hand_computed_episode() -> None:
    # 5-minute grid readings: 4 points at 60 (20 min), then 3 at 100 (15 min back in range)
    g = [100] * 3 + [60] * 4 + [100] * 6
    t = [300.0 * k for k in range(1, len(g) + 1)]
    r = m.GroupedReadings.build(np.zeros(len(g)), t, g, np.zeros(len(g), dtype=int), np.zeros(len(g)))
    ep = m.episodes_of(m.build_grid(r))
    sel = (ep.type == "hypo") & (ep.level == "1")
    assert sel.sum() == 1
    assert ep.duration_minutes[sel][0] == 20 and ep.extreme[sel][0] == 60
    assert ep.start[sel][0] == 4 * 300 and ep.end[sel][0] == 7 * 300
    assert ep.exclusive[sel][0]
    assert not ((ep.type == "hypo") & (ep.level == "2")).any()


def test_mage_of_groups_equals_the_single_series_mage(computed) -> None:
    got, _ = computed
    rng = np.random.default_rng(15)
    for gi, kind in enumerate(KINDS):
        t, g, _tz = _series(kind, rng)
        want = m.mage(g, t)
        if math.isnan(want):
            assert math.isnan(got["mage"][gi]), kind
        else:
            assert got["mage"][gi] == pytest.approx(want, rel=TOL, abs=TOL), kind
