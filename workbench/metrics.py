"""Glucose metrics: the one definition, vectorised over many series at once, used by the dbt marts
(through ``workbench.transform.computed``), notebooks, dashboards, reports and tests; the one-series
forms (``mean_glucose`` … ``summarize``) call the vectorised ones.

Definitions follow the International Consensus on Time in Range (Battelino et al., Diabetes Care
2019) and the iglu R package (Broll et al.; https://github.com/irinagain/iglu):

- percentages are shares of readings; TIR 70–180 inclusive; TBR <70 and <54 strict; TAR >180 and
  >250 strict; TITR 70–140 inclusive;
- sample SD (n-1); CV = 100·SD/mean; GMI = 3.31 + 0.02392·mean (Bergenstal 2018);
  eA1c = (mean + 46.7)/28.7 (Nathan 2008); J-index = 0.001·(mean + SD)² (Wojcicki 1995);
- GRI = 3·VLow + 2.4·Low + 1.6·VHigh + 0.8·High, capped at 100 (Klonoff 2023), where Low is 54–69
  and High 181–250;
- LBGI/HBGI: f = 1.509·(ln(g)^1.084 − 5.381), r = 10·f², mean of r over readings with f<0 / f>0
  (Kovatchev 1997); ADRR = mean over days of (max rl + max rh) (Kovatchev 2006);
- MODD, CONGA and MAGE on a 5-minute grid interpolated linearly, with no interpolation across gaps
  longer than 45 minutes (iglu ``CGMS2DayByDay``); MODD = mean |g(t) − g(t − 24 h)| (Molnar 1972);
  CONGA(n) = SD of g(t) − g(t − n h) (McDonnell 2005); MAGE by iglu's moving-average method
  (Fernandes 2022: short MA 5, long MA 32, traces split at gaps > 180 min, MAGE+ and MAGE−
  averaged, segments weighted by length).

Glucose is in mg/dL; times are epoch seconds (UTC instants).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

GRID_MINUTES = 5
MGDL_PER_MMOLL = 18.0  # mg/dL per mmol/L of glucose, as the AGP report converts
SUFFICIENT_DAYS = 14  # data sufficiency (consensus): at least 14 days ...
SUFFICIENT_ACTIVE_PERCENT = 70.0  # ... with at least 70 % of the possible CGM data
INTER_GAP_MINUTES = 45
MAGE_MAX_GAP_MINUTES = 180
READINGS_PER_DAY = 24 * 60 // GRID_MINUTES


# ---- one series at a time -------------------------------------------------------------------
#
# Convenience forms for one series (notebooks, tests): each builds the series as a single group and
# calls the vectorised definitions below, so every metric has exactly one definition.


def _one(
    glucose: npt.ArrayLike, times_s: npt.ArrayLike | None = None, days: Sequence[object] | npt.ArrayLike | None = None
) -> GroupedReadings:
    """One series as a single group. Without times the readings keep their order (one per
    second); ``days`` labels each reading's (patient-local) day for ADRR, else UTC days of the
    times. The grid starts at the UTC midnight of the first reading (points at multiples of 5
    minutes since the epoch, as at every whole-hour-offset local midnight)."""
    g = np.asarray(glucose, dtype=np.float64).reshape(-1)
    t = np.arange(g.size, dtype=np.float64) if times_s is None else np.asarray(times_s, dtype=np.float64).reshape(-1)
    if days is None:
        label = np.floor(np.nan_to_num(t) / SECONDS_PER_DAY).astype(np.int64)
    else:
        label = np.unique(np.asarray(days), return_inverse=True)[1].reshape(-1).astype(np.int64)
        if times_s is None:  # keep each day's readings together (ADRR reduces runs of one day)
            t = label * float(g.size) + t
    r = GroupedReadings.build(np.zeros(g.size, dtype=np.int64), t, g, label, np.zeros(g.size), n_groups=1)
    if r.t.size:
        r = replace(r, day_start=np.array([math.floor(r.t[0] / SECONDS_PER_DAY) * float(SECONDS_PER_DAY)]))
    return r


def _reading_metric(name: str, glucose: npt.ArrayLike, days: Sequence[object] | npt.ArrayLike | None = None) -> float:
    return float(reading_metrics(_one(glucose, days=days))[name][0])


def mean_glucose(glucose: npt.ArrayLike) -> float:
    """Mean glucose (mg/dL); NaN for no readings."""
    return _reading_metric("mean_glucose", glucose)


def sd_glucose(glucose: npt.ArrayLike) -> float:
    """Sample standard deviation (n−1), as iglu's ``sd_glu``; NaN for fewer than two readings."""
    return _reading_metric("sd_glucose", glucose)


def cv_glucose(glucose: npt.ArrayLike) -> float:
    """Coefficient of variation in percent: 100·SD/mean."""
    return _reading_metric("cv_glucose", glucose)


def gmi(glucose: npt.ArrayLike) -> float:
    """Glucose Management Indicator (%): 3.31 + 0.02392·mean (Bergenstal 2018)."""
    return _reading_metric("gmi", glucose)


def ea1c(glucose: npt.ArrayLike) -> float:
    """Estimated A1c (%): (mean + 46.7)/28.7 (ADAG, Nathan 2008)."""
    return _reading_metric("ea1c", glucose)


def j_index(glucose: npt.ArrayLike) -> float:
    """J-index: 0.001·(mean + SD)² (Wojcicki 1995)."""
    return _reading_metric("j_index", glucose)


def pct_in_range(glucose: npt.ArrayLike, low: float = 70, high: float = 180) -> float:
    """Percent of readings with low ≤ g ≤ high (inclusive, as iglu ``in_range_percent``)."""
    r = _one(glucose)
    return float(_pct(r, (r.g >= low) & (r.g <= high))[0])


def pct_below(glucose: npt.ArrayLike, threshold: float) -> float:
    """Percent of readings strictly below the threshold (TBR)."""
    r = _one(glucose)
    return float(_pct(r, r.g < threshold)[0])


def pct_above(glucose: npt.ArrayLike, threshold: float) -> float:
    """Percent of readings strictly above the threshold (TAR)."""
    r = _one(glucose)
    return float(_pct(r, r.g > threshold)[0])


GRI_WEIGHTS = (3.0, 2.4, 1.6, 0.8)  # very low, low, very high, high (Klonoff 2023)


def gri_from_ranges(very_low: Any, low: Any, high: Any, very_high: Any) -> Any:
    """Glycemia Risk Index from the percentages of the four out-of-range bands (< 54, 54–69,
    181–250, > 250), capped at 100 (Klonoff et al., J Diabetes Sci Technol 2023). Scalars or arrays."""
    w_vlow, w_low, w_vhigh, w_high = GRI_WEIGHTS
    return np.minimum(w_vlow * very_low + w_low * low + w_vhigh * very_high + w_high * high, 100.0)


def gmi_from_mean(mean: Any) -> Any:
    """Glucose Management Indicator (%) from mean glucose in mg/dL (Bergenstal 2018)."""
    return 3.31 + 0.02392 * mean


def is_sufficient(days_with_data: Any, active_percent: Any) -> Any:
    """Enough CGM data for reliable metrics (International Consensus, Battelino 2019): at least
    ``SUFFICIENT_DAYS`` days with data and ``SUFFICIENT_ACTIVE_PERCENT`` % CGM active (NaN: not).
    Scalars (a bool) or arrays (a bool array)."""
    active = np.nan_to_num(np.asarray(active_percent, dtype=np.float64), nan=-np.inf)
    out = (np.asarray(days_with_data) >= SUFFICIENT_DAYS) & (active >= SUFFICIENT_ACTIVE_PERCENT)
    return bool(out) if out.ndim == 0 else out


def gri(glucose: npt.ArrayLike) -> float:
    """Glycemia Risk Index (Klonoff 2023), capped at 100."""
    return _reading_metric("gri", glucose)


def lbgi(glucose: npt.ArrayLike) -> float:
    """Low Blood Glucose Index: mean of rl over all readings (Kovatchev 1997)."""
    return _reading_metric("lbgi", glucose)


def hbgi(glucose: npt.ArrayLike) -> float:
    """High Blood Glucose Index: mean of rh over all readings (Kovatchev 1997)."""
    return _reading_metric("hbgi", glucose)


def adrr(glucose: npt.ArrayLike, days: Sequence[object] | npt.ArrayLike) -> float:
    """Average Daily Risk Range: mean over days of (max rl + max rh); ``days`` labels each reading
    with its (patient-local) day."""
    return _reading_metric("adrr", glucose, days)


def _grid_metric(name: str, glucose: npt.ArrayLike, times_s: npt.ArrayLike) -> float:
    return float(grid_metrics(build_grid(_one(glucose, times_s)), with_mage=name == "mage")[name][0])


def modd(glucose: npt.ArrayLike, times_s: npt.ArrayLike) -> float:
    """Mean Of Daily Differences: mean |g(t) − g(t − 24 h)| on the interpolated grid (iglu ``modd``)."""
    return _grid_metric("modd", glucose, times_s)


def conga(glucose: npt.ArrayLike, times_s: npt.ArrayLike, hours: int = 1) -> float:
    """Continuous Overall Net Glycemic Action: SD of g(t) − g(t − n h) on the grid (iglu ``conga``)."""
    return float(conga_of(build_grid(_one(glucose, times_s)), hours)[0])


def mage(
    glucose: npt.ArrayLike,
    times_s: npt.ArrayLike,
    *,
    short_ma: int = 5,
    long_ma: int = 32,
    max_gap_minutes: float = MAGE_MAX_GAP_MINUTES,
) -> float:
    """Mean Amplitude of Glycemic Excursions by iglu's moving-average method (``direction='avg'``):
    the trace on the 5-minute grid, split at gaps longer than ``max_gap_minutes``, turning points
    between crossings of the short and long moving averages, excursions larger than the segment's
    SD averaged (MAGE+ and MAGE−), segments weighted by length (``mage_of_series``)."""
    grid = build_grid(_one(glucose, times_s))
    return float(
        mage_of_series(grid.v, grid.group, 1, short_ma=short_ma, long_ma=long_ma, max_gap_minutes=max_gap_minutes)[0]
    )


def _rolling_means(x: FloatArray, p: IntArray, start: IntArray, length: IntArray, width: int) -> FloatArray:
    """zoo::rollapply(x, width, mean, align='right', na.rm=TRUE) within each segment (``p`` a point's
    index in its segment, ``start``/``length`` the segments, each at least ``width`` long); the first
    ``width − 1`` points of a segment take the value of its first full window (iglu ``mage_atomic``).

    Window sums are differences of the segment's running sum, so two windows holding the same values
    (a window that reaches back into a gap) have exactly equal means, as in R. Segments are summed
    row-wise in blocks of similar length (a 2-D cumsum per block, not a loop per segment)."""
    out = np.full(x.size, np.nan)
    valid = ~np.isnan(x)
    xz = np.where(valid, x, 0.0)
    size_class = np.ceil(np.log2(length + 1)).astype(np.int64)
    for cls in np.unique(size_class).tolist():
        rows = np.flatnonzero(size_class == cls)
        cols = int(length[rows].max())
        inside = np.arange(cols)[None, :] < length[rows][:, None]
        at = np.where(inside, start[rows][:, None] + np.arange(cols)[None, :], 0)
        csum = np.zeros((rows.size, cols + 1))
        csum[:, 1:] = np.cumsum(np.where(inside, xz[at], 0.0), axis=1)
        ccount = np.zeros((rows.size, cols + 1), dtype=np.int64)
        ccount[:, 1:] = np.cumsum(inside & valid[at], axis=1)
        sums = csum[:, width:] - csum[:, :-width]
        counts = ccount[:, width:] - ccount[:, :-width]
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        keep = inside[:, width - 1 :]
        out[at[:, width - 1 :][keep]] = means[keep]
    early = np.flatnonzero(p < width - 1)
    out[early] = out[early - p[early] + width - 1]
    return out


@dataclass(frozen=True)
class _MageSegments:
    """The segments of every series that MAGE walks (runs without gaps longer than the maximum,
    at least ``long_ma`` points), concatenated."""

    x: FloatArray  # glucose on the grid, NaN in short gaps
    seg: IntArray  # segment of each point
    p: IntArray  # index of each point within its segment
    start: IntArray  # first point of each segment (index into x)
    length: IntArray
    group: IntArray  # series of each segment


def _mage_segments(v: FloatArray, group: IntArray, long_ma: int, max_gap_minutes: float) -> _MageSegments | None:
    ok = ~np.isnan(v)
    okidx = np.flatnonzero(ok)
    if okidx.size == 0:
        return None
    g_ok = group[okidx]
    new = np.flatnonzero(np.append(True, g_ok[1:] != g_ok[:-1]))
    first = okidx[new]
    last = okidx[np.append(new[1:] - 1, okidx.size - 1)]
    keep = last - first + 1 >= max(7, long_ma)  # each series trimmed to its first..last value
    first, last = first[keep], last[keep]
    if first.size == 0:
        return None
    counts = last - first + 1
    pos = np.repeat(first - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(int(counts.sum()))
    region = np.repeat(np.arange(first.size), counts)
    nan = ~ok[pos]
    # NaN runs (never at a region's ends): the long ones split the series into segments
    run_start = np.flatnonzero(nan & ~np.append(False, nan[:-1]))
    run_end = np.flatnonzero(nan & ~np.append(nan[1:], False))
    long_run = (run_end - run_start + 1) * GRID_MINUTES > max_gap_minutes
    mark = np.zeros(pos.size + 1, dtype=np.int64)
    np.add.at(mark, run_start[long_run], 1)
    np.add.at(mark, run_end[long_run] + 1, -1)
    kept = np.cumsum(mark[:-1]) == 0
    pos, region = pos[kept], region[kept]
    begins = np.append(True, (np.diff(pos) != 1) | (np.diff(region) != 0))
    seg_start = np.flatnonzero(begins)
    seg_len = np.diff(np.append(seg_start, pos.size))
    good = seg_len >= max(7, long_ma)
    if not good.any():
        return None
    seg_start, seg_len = seg_start[good], seg_len[good]
    total = int(seg_len.sum())
    offsets = np.concatenate([[0], np.cumsum(seg_len)[:-1]])
    p = np.arange(total) - np.repeat(offsets, seg_len)
    take = np.repeat(seg_start, seg_len) + p
    return _MageSegments(
        x=v[pos[take]],
        seg=np.repeat(np.arange(seg_start.size), seg_len),
        p=p,
        start=offsets.astype(np.int64),
        length=seg_len.astype(np.int64),
        group=group[pos[seg_start]],
    )


def _crossings(s: _MageSegments, delta: FloatArray) -> tuple[IntArray, IntArray, IntArray]:
    """iglu's crossings of the short and long moving averages, of every segment at once:
    (point index, type 0 = toward a minimum / 1 = toward a maximum, segment), in order.

    iglu walks every point keeping the last crossing: a point is a crossing when delta changes
    sign from the point before, or has the opposite sign of the last crossing (after a point that
    could not be compared). The last crossing's sign is the sign of the last comparable point with
    a nonzero delta (or of the first point), once one crossing has a nonzero delta — so the walk
    is a forward fill.
    """
    x, p = s.x, s.p
    head = p == 0
    comparable = ~(np.isnan(x) | np.isnan(delta))
    valid = comparable & np.append(False, comparable[:-1]) & ~head
    sign = np.sign(np.nan_to_num(delta))
    valid_before = np.append(False, valid[:-1]) & ~head
    changed = np.append(False, sign[1:] != sign[:-1]) & ~head
    candidate = valid & (changed | ~valid_before)
    with np.errstate(invalid="ignore"):
        flip = candidate & (delta * np.append(np.nan, delta[:-1]) < 0)
    anchor = head | (candidate & (sign != 0))
    last_anchor = np.maximum.accumulate(np.where(anchor, np.arange(x.size), -1))
    before = np.append(-1, last_anchor[:-1])
    last_sign = sign[np.maximum(before, 0)]
    flips = np.cumsum(flip)
    flips_before = flips - flip - flips[s.start][s.seg]
    synced = (sign[s.start][s.seg] != 0) | (flips_before > 0)
    crossing = flip | (candidate & synced & (sign * last_sign < 0))
    ends = s.start + s.length - 1
    rec = np.flatnonzero(crossing)
    idx = np.concatenate([s.start, rec, ends])
    kind = np.concatenate([np.zeros(s.start.size, np.int64), np.ones(rec.size, np.int64), np.full(ends.size, 2)])
    order = np.lexsort((kind, idx))
    idx = idx[order]
    with np.errstate(invalid="ignore"):
        typ = np.where(np.concatenate([delta[s.start] > 0, delta[rec] >= 0, delta[ends] > 0])[order], 1, 0)
    return idx, typ, s.seg[idx]


def _extrema(x: FloatArray, cross: IntArray, typ: IntArray, seg: IntArray) -> tuple[FloatArray, IntArray]:
    """iglu's turning points: between each crossing and the next, the minimum (type 0) or maximum
    (type 1) of the trace from the previous turning point on (first occurrence; NaN ignored).

    The window of a turning point starts at the previous one, so the points depend on each other;
    they are found by iterating from windows that start at the crossings — each round moves a
    window's start back or leaves it, and the first round that changes nothing is iglu's answer
    (the map is monotone and its fixed point unique)."""
    last_of_seg = np.append(seg[1:] != seg[:-1], True)
    ext = ~last_of_seg  # every crossing but a segment's last opens a turning point
    begin, end, kind = cross[ext], cross[np.flatnonzero(ext) + 1], typ[ext]
    first = np.append(True, seg[ext][1:] != seg[ext][:-1])
    n = x.size
    ok = ~np.isnan(x)
    rank = np.zeros(n, dtype=np.int64)
    rank[ok] = np.unique(x[ok], return_inverse=True)[1].reshape(-1)
    positions = np.arange(n, dtype=np.int64)
    big = np.iinfo(np.int64).max
    key_min = np.where(ok, rank * n + positions, big)
    key_max = np.where(ok, rank * n + (n - 1 - positions), -1)

    def turning_points(sel: IntArray, start: IntArray) -> tuple[IntArray, npt.NDArray[np.bool_]]:
        """First index of the extreme of each window ``start[sel]..end[sel]``, and whether it has
        a value (else the window's start)."""
        idx = start[sel].copy()
        found = np.zeros(sel.size, dtype=bool)
        for t, keys, missing, pick in ((0, key_min, big, np.minimum), (1, key_max, -1, np.maximum)):
            mine = np.flatnonzero(kind[sel] == t)
            if not mine.size:
                continue
            lo, hi = start[sel][mine], end[sel][mine]
            lengths = hi - lo + 1
            offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            points = np.repeat(lo - offsets, lengths) + np.arange(int(lengths.sum()))
            best = pick.reduceat(keys[points], offsets)
            ok_best = best != missing
            at = best % n if t == 0 else n - 1 - best % n
            idx[mine] = np.where(ok_best, at, lo)
            found[mine] = ok_best
        return idx, found

    start = begin.copy()
    idx, value_ok = turning_points(np.arange(begin.size), start)
    check = np.flatnonzero(~first)
    while check.size:  # only a window whose predecessor moved can move
        moved = check[idx[check - 1] != start[check]]
        if not moved.size:
            break
        start[moved] = idx[moved - 1]
        idx[moved], value_ok[moved] = turning_points(moved, start)
        check = moved[moved + 1 < first.size] + 1
        check = check[~first[check]]
    values = np.where(value_ok, x[idx], np.nan)
    return values, seg[ext]


def _excursions(minmax: list[float], sd: float, up: bool) -> list[float]:
    """iglu's MAGE+ (``up``) or MAGE− walk over one segment's turning points.

    iglu compares the current point ``j`` with every turning point since ``prev_j``; the lowest
    (highest, for MAGE−) of those is kept as the walk advances, so each step costs O(1)."""
    out: list[float] = []
    big_n = len(minmax)
    j = prev_j = 0
    lo, hi, best_i, has_nan = 0, -1, -1, False  # extreme of minmax[lo..hi] and its first index
    while j < big_n:
        start_j = j
        if lo != prev_j or hi > j:
            lo, hi, best_i, has_nan = prev_j, prev_j - 1, -1, False
        for t in range(hi + 1, j + 1):
            value = minmax[t]
            if value != value:
                has_nan = True
            elif best_i < 0 or ((value < minmax[best_i]) if up else (value > minmax[best_i])):
                best_i = t
        hi = j
        # numpy's argmax/max over the deltas: a NaN delta is the result and fails the test
        if not has_nan:
            i = best_i
            delta = minmax[j] - minmax[i]
            if (delta >= sd) if up else (delta <= -sd):
                for k in range(j, big_n):
                    if (minmax[k] > minmax[j]) if up else (minmax[k] < minmax[j]):
                        j = k
                    step = minmax[k] - minmax[j]
                    if ((step < -sd) if up else (step > sd)) or k == big_n - 1:
                        out.append(minmax[j] - minmax[i])
                        prev_j = k if up else j
                        j = k
                        break
        if j == start_j:  # no progress (always the case when sd == 0, a flat trace): move on
            j += 1
    return out


def mage_of_series(
    v: npt.ArrayLike,
    group: npt.ArrayLike,
    n_groups: int,
    *,
    short_ma: int = 5,
    long_ma: int = 32,
    max_gap_minutes: float = MAGE_MAX_GAP_MINUTES,
) -> FloatArray:
    """MAGE (iglu ``mage``, moving-average method, ``direction='avg'``) of every series of a grid
    (``v`` the 5-minute grid values, NaN where not interpolated; ``group`` the series of each point,
    contiguous): segments, moving averages, crossings and turning points of all series at once;
    only the final excursion walk visits each segment's turning points in order."""
    out = np.full(n_groups, np.nan)
    values = np.asarray(v, dtype=np.float64)
    groups = np.asarray(group, dtype=np.int64)
    s = _mage_segments(values, groups, long_ma, max_gap_minutes)
    if s is None:
        return out
    delta = _rolling_means(s.x, s.p, s.start, s.length, short_ma) - _rolling_means(s.x, s.p, s.start, s.length, long_ma)
    cross, typ, seg = _crossings(s, delta)
    minmax, ext_seg = _extrema(s.x, cross, typ, seg)
    sd = _gsd(s.x, s.seg, s.start.size)
    bounds = np.searchsorted(ext_seg, np.arange(s.start.size + 1))
    mm = minmax.tolist()
    weighted = np.zeros(n_groups)
    total = np.zeros(n_groups)
    hours = (s.length - 1) * GRID_MINUTES / 60.0
    for k, (lo, hi, sdk) in enumerate(zip(bounds[:-1].tolist(), bounds[1:].tolist(), sd.tolist(), strict=True)):
        seg_mm = mm[lo:hi]
        plus = _excursions(seg_mm, sdk, True)
        minus = _excursions(seg_mm, sdk, False)
        gi = s.group[k]
        for part in (plus, minus):
            if part:
                weighted[gi] += abs(float(np.mean(part))) * hours[k]
                total[gi] += hours[k]
    return _div(weighted, total)


# ---- completeness and a whole summary --------------------------------------------------------


def pct_readings_present(reading_count: int, days: float, interval_minutes: int = GRID_MINUTES) -> float:
    """Percent of the expected CGM readings (one every ``interval_minutes`` over nominal 24-hour
    days) that are present, capped at 100 (a 25-hour day at the end of daylight saving time)."""
    expected = days * 24 * 60 / interval_minutes
    return min(100.0, 100.0 * reading_count / expected) if expected else math.nan


@dataclass(frozen=True)
class GlucoseSummary:
    """Every metric for one series (a patient-day, a period, ...)."""

    reading_count: int
    mean_glucose: float
    sd_glucose: float
    cv_glucose: float
    gmi: float
    ea1c: float
    pct_very_low: float
    pct_low: float
    pct_in_range: float
    pct_high: float
    pct_very_high: float
    pct_below_70: float
    pct_above_180: float
    pct_tight_range: float
    gri: float
    lbgi: float
    hbgi: float
    j_index: float
    adrr: float
    mage: float
    modd: float
    conga_1: float

    def as_dict(self) -> dict[str, float]:
        """Plain dict (for DataFrames)."""
        return asdict(self)


def summarize(glucose: npt.ArrayLike, times_s: npt.ArrayLike, days: Sequence[object] | npt.ArrayLike) -> GlucoseSummary:
    """All metrics for one series; ``days`` gives each reading's patient-local day (for ADRR)."""
    values = all_metrics(_one(glucose, times_s, days))
    floats = {name: float(values[name][0]) for name in GlucoseSummary.__dataclass_fields__ if name != "reading_count"}
    return GlucoseSummary(reading_count=int(values["reading_count"][0]), **floats)


# ---- every iglu metric, vectorised over many groups at once -----------------------------------
#
# A *group* is one series iglu would be given: a patient's readings over a period, a day or a week.
# Readings of all groups are passed together, sorted by (group, time); every reduction is a numpy
# bincount / reduceat over group ids, so the cost is a few passes over the arrays whatever the number
# of groups. Only MAGE (a sequential walk over turning points) runs once per group.
#
# The 5-minute grid is iglu's ``CGMS2DayByDay``: from the patient-local midnight of the group's first
# day, points at 00:05, 00:10, ... 24:00 for ceil(span in days + 1) days, glucose interpolated linearly
# between the readings around each point (R ``approx``), NaN outside the readings and where the two
# readings around a point are more than 45 minutes apart. Row-wise ("day by day") metrics use the
# rows of 288 points of that matrix, exactly as iglu does.

SECONDS_PER_DAY = 86_400
GRID_SECONDS = GRID_MINUTES * 60

# iglu defaults (function arguments in iglu's R sources, github.com/irinagain/iglu, 2025-07)
M_VALUE_R = 90.0  # m_value(r = 90)
MAD_CONSTANT = 1.4826  # mad_glu(constant = 1.4826)
HYPER_ULTR, HYPER_A, HYPER_C = 140.0, 1.1, 30.0  # hyper_index(ULTR = 140, a = 1.1, c = 30)
HYPO_LLTR, HYPO_B, HYPO_D = 80.0, 2.0, 30.0  # hypo_index(LLTR = 80, b = 2, d = 30)
GRADE_HYPO_BELOW, GRADE_EU_LOW, GRADE_EU_HIGH, GRADE_HYPER_ABOVE = 80.0, 70.0, 140.0, 140.0
COGI_TARGETS, COGI_WEIGHTS = (70.0, 180.0), (0.5, 0.35, 0.15)
SD_ROC_LAG_MINUTES = 15  # sd_roc(timelag = 15)
SD_WSH_WINDOW = 60 // GRID_MINUTES  # sd_measures: SDwsh over 1-hour windows
EPISODE_DURATION_MINUTES, EPISODE_END_MINUTES = 15, 15  # episode_calculation(dur_length, end_length)
EXTENDED_HYPO_MINUTES = 120  # extended hypoglycaemia: > 120 minutes below 70
PGS_DURATION_MINUTES, PGS_END_MINUTES = 20, 30  # pgs(dur_length = 20, end_length = 30)
HYPO_LV1, HYPO_LV2, HYPER_LV1, HYPER_LV2 = 70.0, 54.0, 180.0, 250.0


@dataclass(frozen=True)
class GroupedReadings:
    """Readings of ``n_groups`` series, sorted by (group, time).

    ``day_start`` is, per group, the UTC instant (epoch seconds) of the patient-local midnight that
    starts the group's first day (the origin of iglu's grid); ``local_day`` labels each reading with
    its patient-local date (days since 1970-01-01; ADRR and the daily marts group by it)."""

    group: IntArray
    t: FloatArray
    g: FloatArray
    local_day: IntArray
    day_start: FloatArray
    n_groups: int

    @classmethod
    def build(
        cls,
        group: npt.ArrayLike,
        t: npt.ArrayLike,
        g: npt.ArrayLike,
        local_day: npt.ArrayLike,
        utc_offset_s: npt.ArrayLike,
        n_groups: int | None = None,
        group_tz: Sequence[str | None] | None = None,
    ) -> GroupedReadings:
        """From unsorted columns: drops NaN glucose, sorts by (group, time), keeps the last of
        readings with the same time (iglu ``CGMS2DayByDay``), and finds each group's grid origin:
        the local midnight of its first reading's date in ``group_tz`` (an IANA zone per group), or
        without zones that date minus the first reading's UTC offset (equal unless the offset
        changed between midnight and the first reading)."""
        grp = np.asarray(group, dtype=np.int64)
        tt = np.asarray(t, dtype=np.float64)
        gg = np.asarray(g, dtype=np.float64)
        day = np.asarray(local_day, dtype=np.int64)
        off = np.asarray(utc_offset_s, dtype=np.float64)
        keep = ~(np.isnan(gg) | np.isnan(tt))
        grp, tt, gg, day, off = grp[keep], tt[keep], gg[keep], day[keep], off[keep]
        order = np.lexsort((tt, grp))
        grp, tt, gg, day, off = grp[order], tt[order], gg[order], day[order], off[order]
        if grp.size:
            last = np.append((np.diff(grp) != 0) | (np.diff(tt) != 0), True)
            grp, tt, gg, day, off = grp[last], tt[last], gg[last], day[last], off[last]
        n = int(n_groups if n_groups is not None else (grp.max() + 1 if grp.size else 0))
        day_start = np.full(n, np.nan)
        if grp.size:
            first = np.flatnonzero(np.append(True, np.diff(grp) != 0))
            day_start[grp[first]] = day[first] * float(SECONDS_PER_DAY) - off[first]
            if group_tz is not None:
                for gi, d in zip(grp[first].tolist(), day[first].tolist(), strict=True):
                    if group_tz[gi]:
                        day_start[gi] = _local_midnight(int(d), str(group_tz[gi]))
        return cls(grp, tt, gg, day, day_start, n)


def _local_midnight(day: int, tz: str) -> float:
    """Epoch seconds of 00:00 local time on ``day`` (days since 1970-01-01) in zone ``tz``."""
    from datetime import date, datetime, timedelta
    from zoneinfo import ZoneInfo

    d = date(1970, 1, 1) + timedelta(days=day)
    return datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(tz)).timestamp()


@dataclass(frozen=True)
class Grid:
    """iglu's day-by-day grid of every group, flattened row-major (group, day, time of day)."""

    group: IntArray
    t: FloatArray  # epoch seconds of each grid point
    v: FloatArray  # interpolated glucose, NaN where not interpolated
    k: IntArray  # index of the point within its group (k // 288 is iglu's day row)
    n_groups: int

    @property
    def row(self) -> IntArray:
        """A unique id per (group, day row) — increasing along the flat grid."""
        start = np.append(True, (np.diff(self.group) != 0) | (np.diff(self.k // READINGS_PER_DAY) != 0))
        return np.cumsum(start) - 1


def _group_bounds(group: IntArray, n: int) -> tuple[IntArray, IntArray]:
    counts = np.bincount(group, minlength=n).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    return starts, counts


def build_grid(r: GroupedReadings, inter_gap_minutes: float = INTER_GAP_MINUTES) -> Grid:
    """The 5-minute grid of every group (see the section comment), vectorised over all groups."""
    n = r.n_groups
    starts, counts = _group_bounds(r.group, n)
    has = counts > 0
    first_t = np.full(n, np.nan)
    last_t = np.full(n, np.nan)
    first_t[has] = r.t[starts[has]]
    last_t[has] = r.t[starts[has] + counts[has] - 1]
    ndays = np.zeros(n, dtype=np.int64)
    ndays[has] = np.ceil((last_t[has] - first_t[has]) / SECONDS_PER_DAY + 1).astype(np.int64)
    points = ndays * READINGS_PER_DAY
    # The points after a group's last reading are NaN (iglu's last row runs on to its midnight: a
    # one-day group has two rows). They change no metric, except that SDwsh's windows reaching into
    # them count, so only the first SD_WSH_WINDOW of them are kept.
    before_last = np.zeros(n, dtype=np.int64)
    before_last[has] = np.floor((last_t[has] - r.day_start[has]) / GRID_SECONDS).astype(np.int64)
    points = np.minimum(points, np.maximum(before_last, 0) + SD_WSH_WINDOW)
    total = int(points.sum())
    gid = np.repeat(np.arange(n, dtype=np.int64), points)
    offsets = np.concatenate([[0], np.cumsum(points)[:-1]]).astype(np.int64)
    k = np.arange(total, dtype=np.int64) - np.repeat(offsets, points)
    gt = r.day_start[gid] + GRID_SECONDS * (k + 1).astype(np.float64)
    v = np.full(total, np.nan)
    if total and r.t.size:
        # position of each grid point among the readings: composite (group, time) keys in µs
        base = np.nan_to_num(r.day_start, nan=0.0)
        span = int(np.ceil((max(float(np.nanmax(last_t - base)), float(np.max(gt - base[gid]))) + 2) * 1e6))
        key_r = r.group * span + np.round((r.t - base[r.group]) * 1e6).astype(np.int64)
        key_g = gid * span + np.round((gt - base[gid]) * 1e6).astype(np.int64)
        i = np.searchsorted(key_r, key_g, side="right") - 1
        ic = np.clip(i, 0, r.t.size - 1)
        prev_ok = (i >= 0) & (r.group[ic] == gid)
        exact = prev_ok & (r.t[ic] == gt)
        j = np.clip(i + 1, 0, r.t.size - 1)
        next_ok = prev_ok & (i + 1 < r.t.size) & (r.group[j] == gid)
        gap = r.t[j] - r.t[ic]
        inside = next_ok & ~exact & (gap <= inter_gap_minutes * 60.0)
        x0, x1, y0, y1 = r.t[ic], r.t[j], r.g[ic], r.g[j]
        with np.errstate(invalid="ignore", divide="ignore"):
            interp = y0 + (y1 - y0) * ((gt - x0) / (x1 - x0))
        v = np.where(exact, y0, np.where(inside, interp, np.nan))
    return Grid(gid, gt, v, k, n)


# ---- grouped reductions ------------------------------------------------------------------------


def _sorted_starts(group: IntArray, n: int) -> IntArray | None:
    """Where each group starts when ``group`` is non-decreasing (as readings and grids are), else
    None. ``starts[i]:starts[i + 1]`` are group i's elements (``n + 1`` bounds)."""
    if group.size > 1 and not bool(np.all(group[1:] >= group[:-1])):
        return None
    return np.searchsorted(group, np.arange(n + 1, dtype=np.int64)).astype(np.int64)


def _reduce_sorted(values: npt.NDArray[Any], starts: IntArray) -> FloatArray:
    """Sum of each group's values, ``starts`` from ``_sorted_starts`` (a segment sum, no scatter)."""
    n = starts.size - 1
    out = np.zeros(n)
    nonempty = np.flatnonzero(starts[1:] > starts[:-1])
    if nonempty.size:
        out[nonempty] = np.add.reduceat(values, starts[nonempty], dtype=np.float64)
    return out


def _gsum(values: FloatArray, group: IntArray, n: int) -> FloatArray:
    starts = _sorted_starts(group, n)
    if starts is not None:
        return _reduce_sorted(values, starts)
    return np.bincount(group, weights=values, minlength=n).astype(np.float64)


def _gcount(mask: npt.NDArray[np.bool_], group: IntArray, n: int) -> FloatArray:
    starts = _sorted_starts(group, n)
    if starts is not None:
        csum = np.zeros(mask.size + 1, dtype=np.int64)
        np.cumsum(mask, out=csum[1:])
        return (csum[starts[1:]] - csum[starts[:-1]]).astype(np.float64)
    return np.bincount(group, weights=mask.astype(np.float64), minlength=n).astype(np.float64)


def _div(a: FloatArray, b: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


def _gmean(values: FloatArray, group: IntArray, n: int) -> FloatArray:
    """Mean of the non-NaN values of each group (NaN for none)."""
    ok = ~np.isnan(values)
    return _div(_gsum(np.where(ok, values, 0.0), group, n), _gcount(ok, group, n))


def _gsd(values: FloatArray, group: IntArray, n: int) -> FloatArray:
    """Sample SD (n−1) of the non-NaN values of each group, two-pass (NaN for fewer than two)."""
    ok = ~np.isnan(values)
    starts = _sorted_starts(group, n)
    zeroed = np.where(ok, values, 0.0)
    if starts is not None:
        csum = np.zeros(ok.size + 1, dtype=np.int64)
        np.cumsum(ok, out=csum[1:])
        cnt = (csum[starts[1:]] - csum[starts[:-1]]).astype(np.float64)
        mean = _div(_reduce_sorted(zeroed, starts), cnt)
        dev = np.where(ok, values - np.repeat(np.nan_to_num(mean), np.diff(starts)), 0.0)
        ss = _reduce_sorted(dev * dev, starts)
    else:
        cnt = np.bincount(group, weights=ok.astype(np.float64), minlength=n).astype(np.float64)
        mean = _div(np.bincount(group, weights=zeroed, minlength=n).astype(np.float64), cnt)
        dev = np.where(ok, values - np.nan_to_num(mean[group]), 0.0)
        ss = np.bincount(group, weights=dev * dev, minlength=n).astype(np.float64)
    return np.sqrt(_div(ss, np.where(cnt > 1, cnt - 1, 0.0)))


def _gquantiles(values: FloatArray, group: IntArray, n: int, probs: Sequence[float]) -> list[FloatArray]:
    """R ``quantile(type = 7)`` of the non-NaN values of each group, for every p in ``probs``."""
    ok = ~np.isnan(values)
    x, grp = values[ok], group[ok]
    # sort by (group, value): one integer sort of group · (number of value codes) + the value's code —
    # for CGM data (whole or half mg/dL within a small range) the code is the doubled value itself
    # (no np.unique sort); otherwise the value's rank among the distinct values
    lo = float(x.min()) if x.size else 0.0
    doubled = (x - lo) * 2.0
    if x.size and float(doubled.max()) < 1 << 20 and bool(np.all(doubled == np.round(doubled))):
        width = int(doubled.max()) + 1
        key = np.sort(grp * width + doubled.astype(np.int64))
        x, grp = (key % width) / 2.0 + lo, key // width
    else:
        uniq, rank = np.unique(x, return_inverse=True)
        key = np.sort(grp * max(uniq.size, 1) + rank.reshape(-1))
        x, grp = uniq[key % max(uniq.size, 1)], key // max(uniq.size, 1)
    starts, counts = _group_bounds(grp, n)
    out = []
    has = counts > 0
    for p in probs:
        q = np.full(n, np.nan)
        index = (counts[has] - 1) * p
        lo = np.floor(index).astype(np.int64)
        hi = np.ceil(index).astype(np.int64)
        h = index - lo
        xlo, xhi = x[starts[has] + lo], x[starts[has] + hi]
        # as R does: interpolate only where the neighbours differ, so equal values stay exact
        q[has] = np.where((h > 0) & (xhi != xlo), (1 - h) * xlo + h * xhi, xlo)
        out.append(q)
    # increasing probabilities give non-decreasing quantiles; rounding must not break that by an ulp
    for i in range(1, len(out)):
        if probs[i] >= probs[i - 1]:
            out[i] = np.fmax(out[i], out[i - 1])
    return out


grouped_quantiles = _gquantiles


def _lag_diff(grid: Grid, lag: int) -> tuple[FloatArray, IntArray]:
    """g(k + lag) − g(k) within each group (NaN where either side is NaN), and the group of each."""
    if grid.v.size <= lag:
        return np.empty(0), np.empty(0, dtype=np.int64)
    same = grid.group[lag:] == grid.group[:-lag]
    d = grid.v[lag:] - grid.v[:-lag]
    return np.where(same, d, np.nan), grid.group[lag:]


# ---- per-reading metrics of many groups ------------------------------------------------------


def _grade_values(g: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        grade = 425.0 * (np.log10(np.log10(g / 18.0)) + 0.16) ** 2
    return np.minimum(grade, 50.0)


def _pct(r: GroupedReadings, mask: npt.NDArray[np.bool_]) -> FloatArray:
    """Percent of each group's readings where ``mask`` holds (NaN for a group without readings)."""
    return 100.0 * _div(_gcount(mask, r.group, r.n_groups), _gcount(np.ones(r.g.size, dtype=bool), r.group, r.n_groups))


def reading_metrics(r: GroupedReadings) -> dict[str, FloatArray]:
    """Every metric defined on the readings themselves (no grid), one value per group."""
    n, grp, g = r.n_groups, r.group, r.g
    cnt = _gcount(np.ones(g.size, dtype=bool), grp, n)

    def share(mask: npt.NDArray[np.bool_]) -> FloatArray:
        return _pct(r, mask)

    mean = _gmean(g, grp, n)
    sd = _gsd(g, grp, n)
    q0, q25, q50, q75, q100 = _gquantiles(g, grp, n, (0.0, 0.25, 0.5, 0.75, 1.0))
    abs_dev = np.abs(g - q50[grp]) if g.size else np.empty(0)
    (mad_median,) = _gquantiles(abs_dev, grp, n, (0.5,))
    f = 1.509 * (np.log(g) ** 1.084 - 5.381)
    risk = 10.0 * f**2
    rl, rh = np.where(f < 0, risk, 0.0), np.where(f > 0, risk, 0.0)
    grade = _grade_values(g)
    grade_total = _gsum(grade, grp, n)
    very_low, below_70 = share(g < 54), share(g < 70)
    above_180, very_high = share(g > 180), share(g > 250)
    in_range = share((g >= 70) & (g <= 180))
    hyper = _div(_gsum(np.where(g > HYPER_ULTR, np.abs(g - HYPER_ULTR) ** HYPER_A, 0.0), grp, n), cnt * HYPER_C)
    hypo = _div(_gsum(np.where(g < HYPO_LLTR, np.abs(HYPO_LLTR - g) ** HYPO_B, 0.0), grp, n), cnt * HYPO_D)

    # ADRR: mean over local days of (max rl + max rh)
    if g.size:
        day_start = np.flatnonzero(np.append(True, (np.diff(grp) != 0) | (np.diff(r.local_day) != 0)))
        day_risk = np.maximum.reduceat(rl, day_start) + np.maximum.reduceat(rh, day_start)
        adrr_ = _gmean(day_risk, grp[day_start], n)
        days_with_data = np.bincount(grp[day_start], minlength=n).astype(np.float64)
    else:
        adrr_ = np.full(n, np.nan)
        days_with_data = np.zeros(n)

    out = {
        "reading_count": cnt,
        "days_with_data": days_with_data,
        "mean_glucose": mean,
        "sd_glucose": sd,
        "cv_glucose": 100.0 * _div(sd, mean),
        "gmi": gmi_from_mean(mean),
        "ea1c": (mean + 46.7) / 28.7,
        "pct_very_low": very_low,
        "pct_low": share((g >= 54) & (g < 70)),
        "pct_in_range": in_range,
        "pct_high": share((g > 180) & (g <= 250)),
        "pct_very_high": very_high,
        "pct_below_70": below_70,
        "pct_above_180": above_180,
        "pct_tight_range": share((g >= 70) & (g <= 140)),
        "pct_63_140": share((g >= 63) & (g <= 140)),
        "pct_above_140": share(g > 140),
        "gri": gri_from_ranges(very_low, below_70 - very_low, above_180 - very_high, very_high),
        "lbgi": _gmean(rl, grp, n),
        "hbgi": _gmean(rh, grp, n),
        "j_index": 0.001 * (mean + sd) ** 2,
        "adrr": adrr_,
        "min_glucose": q0,
        "q1_glucose": q25,
        "median_glucose": q50,
        "q3_glucose": q75,
        "max_glucose": q100,
        "range_glucose": q100 - q0,
        "iqr_glucose": q75 - q25,
        "grade": _gmean(grade, grp, n),
        "grade_hypo": 100.0 * _div(_gsum(np.where(g < GRADE_HYPO_BELOW, grade, 0.0), grp, n), grade_total),
        "grade_eugly": 100.0
        * _div(_gsum(np.where((g >= GRADE_EU_LOW) & (g <= GRADE_EU_HIGH), grade, 0.0), grp, n), grade_total),
        "grade_hyper": 100.0 * _div(_gsum(np.where(g > GRADE_HYPER_ABOVE, grade, 0.0), grp, n), grade_total),
        "m_value": _gmean(1000.0 * np.abs(np.log10(g / M_VALUE_R)) ** 3, grp, n),
        "mad": MAD_CONSTANT * mad_median,
        "hyper_index": hyper,
        "hypo_index": hypo,
        "igc": hyper + hypo,
        "cogi": cogi_from(in_range, below_70, sd),
        "active_percent": active_percent_of(r),
    }
    return out


def cogi_from(in_range: FloatArray, below: FloatArray, sd: FloatArray) -> FloatArray:
    """COGI (Leelarathna 2020, iglu ``cogi``) from TIR 70–180, TBR < 70 and SD."""
    w1, w2, w3 = COGI_WEIGHTS
    f1 = np.minimum((in_range > 0) * in_range / 100.0, 1.0) * w1
    f2 = np.minimum((below < 15) * (below - 15.0) / (0.0 - 15.0), 1.0) * w2
    f3 = np.minimum((sd < 108) * (sd - 108.0) / (18.0 - 108.0), 1.0) * w3
    return 100.0 * (f1 + f2 + f3)


def active_percent_of(r: GroupedReadings, dt0_minutes: float = GRID_MINUTES) -> FloatArray:
    """iglu ``active_percent`` (range_type = 'automatic'): share of the expected readings between the
    group's first and last reading that are there, where each gap longer than the CGM interval
    misses round((gap − interval)/interval) readings (R's round: half to even)."""
    n = r.n_groups
    starts, counts = _group_bounds(r.group, n)
    has = counts > 0
    span = np.zeros(n)
    span[has] = (r.t[starts[has] + counts[has] - 1] - r.t[starts[has]]) / 60.0
    theoretical = np.round(np.round(span) / dt0_minutes) + 1
    if r.t.size > 1:
        diff = np.diff(r.t) / 60.0
        same = r.group[1:] == r.group[:-1]
        is_gap = same & (np.round(diff) > dt0_minutes)
        gap_minutes = _gsum(np.where(is_gap, diff, 0.0), r.group[1:], n)
        n_gaps = _gcount(is_gap, r.group[1:], n)
    else:
        gap_minutes = np.zeros(n)
        n_gaps = np.zeros(n)
    missing = np.round((gap_minutes - n_gaps * dt0_minutes) / dt0_minutes)
    return np.where(has, 100.0 * (theoretical - missing) / theoretical, np.nan)


# ---- grid metrics of many groups ---------------------------------------------------------------


def grid_metrics(grid: Grid, *, with_mage: bool = True) -> dict[str, FloatArray]:
    """Every metric defined on iglu's 5-minute grid, one value per group."""
    n, per_day = grid.n_groups, READINGS_PER_DAY
    out: dict[str, FloatArray] = {}
    d288, g288 = _lag_diff(grid, per_day)
    out["modd"] = _gmean(np.abs(d288), g288, n)
    out["conga_1"] = conga_of(grid, 1)
    out["conga_24"] = _gsd(d288, g288, n)  # conga_of(grid, 24), from the lag already taken
    d1, g1 = _lag_diff(grid, 1)
    ok1 = ~np.isnan(d1)
    n1 = _gcount(ok1, g1, n)
    # MAG: sum |Δg| over consecutive grid points / (number of differences · 5 min in hours)
    out["mag"] = _div(_gsum(np.where(ok1, np.abs(d1), 0.0), g1, n), n1 * (GRID_MINUTES / 60.0))
    # GVP: length of the trace over its idealised flat length, minus 1, in percent
    added = np.where(ok1, np.sqrt(GRID_MINUTES**2 + np.where(ok1, d1, 0.0) ** 2), 0.0)
    out["gvp"] = 100.0 * (_div(_gsum(added, g1, n), n1 * GRID_MINUTES) - 1.0)
    lag_roc = SD_ROC_LAG_MINUTES // GRID_MINUTES
    droc, groc = _lag_diff(grid, lag_roc)
    out["sd_roc"] = _gsd(droc / SD_ROC_LAG_MINUTES, groc, n)

    # day-by-day matrix measures (iglu cv_measures, sd_measures)
    row = grid.row
    row_group = np.zeros(int(row[-1]) + 1 if row.size else 0, dtype=np.int64)
    row_group[row] = grid.group
    n_rows = row_group.size
    row_mean = _gmean(grid.v, row, n_rows)
    row_sd = _gsd(grid.v, row, n_rows)
    row_cv = 100.0 * _div(row_sd, row_mean)
    out["cv_mean"] = _gmean(row_cv, row_group, n)
    out["cv_sd"] = _gsd(row_cv, row_group, n)
    out["sd_w"] = _gmean(row_sd, row_group, n)
    out["sd_dm"] = _gsd(row_mean, row_group, n)
    col = grid.group * per_day + grid.k % per_day
    n_cols = n * per_day
    col_group = np.repeat(np.arange(n, dtype=np.int64), per_day)
    col_mean = _gmean(grid.v, col, n_cols)
    out["sd_hhmm"] = _gsd(col_mean, col_group, n)
    out["sd_b"] = _gmean(_gsd(grid.v, col, n_cols), col_group, n)
    out["sd_b_dm"] = _gmean(_gsd(grid.v - row_mean[row] if row.size else grid.v, col, n_cols), col_group, n)
    out["sd_ws_h"] = _sd_within_series(grid, SD_WSH_WINDOW)

    # AUC: trapezoids between consecutive points of one day row; per day area / hours covered; mean
    same_row = np.zeros(grid.v.size, dtype=bool)
    if grid.v.size > 1:
        same_row[1:] = row[1:] == row[:-1]
    area = np.full(grid.v.size, np.nan)
    area[1:] = (GRID_MINUTES / 60.0) * (grid.v[1:] + grid.v[:-1]) / 2.0
    area = np.where(same_row, area, np.nan)
    ok_area = ~np.isnan(area)
    day_area = _gsum(np.where(ok_area, area, 0.0), row, n_rows)
    day_hours = (GRID_MINUTES / 60.0) * _gcount(ok_area, row, n_rows)
    out["auc_hourly"] = _gmean(_div(day_area, day_hours), row_group, n)

    if with_mage:
        out["mage"] = mage_of_groups(grid)
    return out


def conga_of(grid: Grid, hours: int) -> FloatArray:
    """CONGA(n) of every group: SD of g(t) − g(t − n h) on the grid (McDonnell 2005, iglu ``conga``)."""
    d, g = _lag_diff(grid, hours * 60 // GRID_MINUTES)
    return _gsd(d, g, grid.n_groups)


def _sd_within_series(grid: Grid, window: int, chunk: int = 1 << 20) -> FloatArray:
    """iglu SDwsh: mean over every run of ``window`` consecutive grid points of a group of the sample
    SD of its non-NaN points (caTools ``runsd``, endrule 'trim'; windows with < 2 points skipped).
    Two passes (window mean, then squared deviations) over shifted views: O(points) memory."""
    n = grid.n_groups
    total_sd = np.zeros(n)
    total_n = np.zeros(n)
    v = grid.v
    ok_all = ~np.isnan(v)
    present = ok_all.astype(np.float64)
    zeroed = np.where(ok_all, v, 0.0)
    size = v.size - window + 1
    for lo in range(0, max(size, 0), chunk):
        hi = min(lo + chunk, size)
        sums = np.zeros(hi - lo)
        cnt = np.zeros(hi - lo)
        for j in range(window):
            sums += zeroed[lo + j : hi + j]
            cnt += present[lo + j : hi + j]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = sums / cnt
            ss = np.zeros(hi - lo)
            for j in range(window):
                dev = zeroed[lo + j : hi + j] - mean
                ss += present[lo + j : hi + j] * (dev * dev)  # NaN only where no point (unused)
            sd = np.sqrt(ss / (cnt - 1))
        same = grid.group[lo:hi] == grid.group[lo + window - 1 : hi + window - 1]
        use = same & (cnt > 1)
        total_sd += _gsum(np.where(use, sd, 0.0), grid.group[lo:hi], n)
        total_n += _gcount(use, grid.group[lo:hi], n)
    return _div(total_sd, total_n)


def mage_of_groups(grid: Grid) -> FloatArray:
    """MAGE (iglu ``mage``, moving-average method) of every group of the grid, all at once."""
    return mage_of_series(grid.v, grid.group, grid.n_groups)


# ---- hypo- and hyperglycaemic episodes (iglu episode_calculation) -------------------------------

EPISODE_KINDS: tuple[tuple[str, str, float, str], ...] = (
    # (type, level, threshold mg/dL, comparison)
    ("hypo", "1", HYPO_LV1, "<"),
    ("hypo", "2", HYPO_LV2, "<"),
    ("hypo", "extended", HYPO_LV1, "<"),
    ("hyper", "1", HYPER_LV1, ">"),
    ("hyper", "2", HYPER_LV2, ">"),
)


@dataclass(frozen=True)
class Episodes:
    """Episodes of many groups: parallel arrays, one entry per episode."""

    group: IntArray
    type: npt.NDArray[np.str_]
    level: npt.NDArray[np.str_]
    exclusive: npt.NDArray[np.bool_]  # level 1 episodes that never reach level 2
    first: IntArray  # index of the first grid point (into Grid arrays)
    last: IntArray  # index of the last grid point
    start: FloatArray  # epoch seconds
    end: FloatArray
    duration_minutes: FloatArray  # grid points · 5 min (iglu event_duration)
    extreme: FloatArray  # nadir (hypo) or peak (hyper) of the interpolated glucose
    mean: FloatArray  # mean interpolated glucose (iglu avg_ep_gl)


def _events(
    v: FloatArray, seg: IntArray, level: npt.NDArray[np.bool_], dur: int, end: int
) -> tuple[IntArray, IntArray]:
    """iglu ``event_class`` over the non-NaN points of all segments at once: an episode starts at a
    run of ``level`` points at least ``dur`` long and lasts until the point before the next run of
    non-level points at least ``end`` long (or the segment's end); later starts that would share the
    same end belong to the first one. Returns (first, last) indices into ``v``."""
    m = v.size
    if m == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    run_start = np.flatnonzero(np.append(True, (np.diff(seg) != 0) | (level[1:] != level[:-1])))
    run_len = np.diff(np.append(run_start, m))
    run_level = level[run_start]
    starts = run_start[run_level & (run_len >= dur)]
    seg_end = np.flatnonzero(np.append(np.diff(seg) != 0, True)) + 1  # one past each segment
    ends = np.sort(np.concatenate([run_start[~run_level & (run_len >= end)], seg_end]))
    last = ends[np.searchsorted(ends, starts, side="right")] - 1
    last, first_idx = np.unique(last, return_index=True)
    return starts[first_idx].astype(np.int64), last.astype(np.int64)


def episodes_of(
    grid: Grid,
    *,
    duration_minutes: int = EPISODE_DURATION_MINUTES,
    end_minutes: int = EPISODE_END_MINUTES,
) -> Episodes:
    """Every episode of every group on the grid (iglu ``episode_calculation`` with its defaults:
    level 1 hypo < 70, level 2 < 54, level 1 hyper > 180, level 2 > 250, ≥ 15 minutes, ended by
    ≥ 15 minutes out of the range; extended hypo: > 120 minutes < 70, ended by 15 minutes ≥ 70)."""
    keep = np.flatnonzero(~np.isnan(grid.v))
    v, grp, t = grid.v[keep], grid.group[keep], grid.t[keep]
    # segments: runs of non-NaN grid points (a NaN point or a new group breaks a segment)
    seg = np.cumsum(np.append(True, (np.diff(keep) != 1) | (np.diff(grp) != 0))) if keep.size else keep
    dur = math.ceil(duration_minutes / GRID_MINUTES)
    end = math.ceil(end_minutes / GRID_MINUTES)
    parts: list[tuple[str, str, IntArray, IntArray]] = []
    for kind, level, threshold, op in EPISODE_KINDS:
        mask = v < threshold if op == "<" else v > threshold
        d = EXTENDED_HYPO_MINUTES // GRID_MINUTES + 1 if level == "extended" else dur
        first, last = _events(v, seg, mask, d, end)
        parts.append((kind, level, first, last))
    # level 1 episodes containing a point of a level 2 episode of the same type are not exclusive
    exclusive_parts = []
    for kind, level, first, last in parts:
        if level != "1":
            exclusive_parts.append(np.zeros(first.size, dtype=bool))
            continue
        lv2 = next(p for p in parts if p[0] == kind and p[1] == "2")
        cover = np.zeros(v.size + 1, dtype=np.int64)
        np.add.at(cover, lv2[2], 1)
        np.add.at(cover, lv2[3] + 1, -1)
        in_lv2 = np.cumsum(cover)[:-1] > 0
        csum = np.concatenate([[0], np.cumsum(in_lv2)])
        exclusive_parts.append((csum[last + 1] - csum[first]) == 0)
    first = np.concatenate([p[2] for p in parts]) if parts else np.empty(0, dtype=np.int64)
    last = np.concatenate([p[3] for p in parts]) if parts else np.empty(0, dtype=np.int64)
    kinds = np.concatenate([np.full(p[2].size, p[0]) for p in parts]).astype(str)
    levels = np.concatenate([np.full(p[2].size, p[1]) for p in parts]).astype(str)
    exclusive = np.concatenate(exclusive_parts)
    csum_v = np.concatenate([[0.0], np.cumsum(v)])
    npts = (last - first + 1).astype(np.float64)
    hypo = kinds == "hypo"
    if first.size:
        v_ext = np.append(v, np.nan)
        bounds = np.column_stack([first, last + 1]).ravel()  # reduceat over [first, last] pairs
        mins = np.minimum.reduceat(v_ext, bounds)[::2]
        maxs = np.maximum.reduceat(v_ext, bounds)[::2]
    else:
        mins = maxs = np.empty(0)
    return Episodes(
        group=grp[first] if first.size else np.empty(0, dtype=np.int64),
        type=kinds,
        level=levels,
        exclusive=exclusive,
        first=keep[first] if first.size else first,
        last=keep[last] if last.size else last,
        start=t[first] if first.size else np.empty(0),
        end=t[last] if last.size else np.empty(0),
        duration_minutes=npts * GRID_MINUTES,
        extreme=np.where(hypo, mins, maxs),
        mean=(csum_v[last + 1] - csum_v[first]) / npts if first.size else np.empty(0),
    )


EPISODE_RATE_COLUMNS: dict[str, tuple[str, str, bool]] = {
    # column: (type, level, exclusive only)
    "hypo_lv1_per_day": ("hypo", "1", False),
    "hypo_lv2_per_day": ("hypo", "2", False),
    "hypo_extended_per_day": ("hypo", "extended", False),
    "hyper_lv1_per_day": ("hyper", "1", False),
    "hyper_lv2_per_day": ("hyper", "2", False),
    "hypo_lv1_excl_per_day": ("hypo", "1", True),
    "hyper_lv1_excl_per_day": ("hyper", "1", True),
}


def grid_days(grid: Grid) -> FloatArray:
    """Days of interpolated glucose per group (non-NaN grid points · 5 min): iglu's denominator of
    episodes per day."""
    return _gcount(~np.isnan(grid.v), grid.group, grid.n_groups) * GRID_MINUTES / (24 * 60)


def episode_rates(ep: Episodes, days: FloatArray) -> dict[str, FloatArray]:
    """Episodes per day of every kind (iglu ``avg_ep_per_day``): count / days of grid data."""
    n = days.size
    out = {}
    for column, (kind, level, excl) in EPISODE_RATE_COLUMNS.items():
        mask = (ep.type == kind) & (ep.level == level) & (ep.exclusive if excl else True)
        out[column] = _div(_gcount(mask, ep.group, n), days)
    return out


def pgs_from(gvp_: FloatArray, in_range: FloatArray, mean: FloatArray, grid: Grid) -> FloatArray:
    """Personal Glycemic State (Hirsch 2017, iglu ``pgs``): GVP, TIR, mean and the weekly numbers of
    < 54 and exclusive < 70 episodes (20-minute episodes ended by 30 minutes, iglu's pgs defaults)."""
    ep = episodes_of(grid, duration_minutes=PGS_DURATION_MINUTES, end_minutes=PGS_END_MINUTES)
    rates = episode_rates(ep, grid_days(grid))
    f_gvp = 1 + 9 / (1 + np.exp(-0.049 * (gvp_ - 65.47)))
    f_ptir = 1 + 9 / (1 + np.exp(0.0833 * (in_range - 55.04)))
    f_mg = 1 + 9 * (1 / (1 + np.exp(0.1139 * (mean - 72.08))) + 1 / (1 + np.exp(-0.09195 * (mean - 157.57))))
    f_h54 = 0.5 + 4.5 * (1 - np.exp(-0.81093 * rates["hypo_lv2_per_day"] * 7))
    n70 = rates["hypo_lv1_excl_per_day"] * 7
    f_h70 = np.where(n70 <= 7.65, 0.5714 * n70 + 0.625, 5.0)
    return f_gvp + f_ptir + f_mg + f_h54 + f_h70


def all_metrics(r: GroupedReadings, *, with_mage: bool = True) -> dict[str, FloatArray]:
    """Every metric (readings, grid, episode rates, PGS) for every group, as columns."""
    return metrics_and_episodes(r, with_mage=with_mage)[0]


def metrics_and_episodes(r: GroupedReadings, *, with_mage: bool = True) -> tuple[dict[str, FloatArray], Episodes]:
    """``all_metrics`` and the episodes its rates count (one grid for both)."""
    out = reading_metrics(r)
    grid = build_grid(r)
    out.update(grid_metrics(grid, with_mage=with_mage))
    days = grid_days(grid)
    out["grid_days"] = days
    episodes = episodes_of(grid)
    out.update(episode_rates(episodes, days))
    out["pgs"] = pgs_from(out["gvp"], out["pct_in_range"], out["mean_glucose"], grid)
    return out, episodes


# ---- AGP --------------------------------------------------------------------------------------

AGP_PERCENTILES = (("p05", 0.05), ("p25", 0.25), ("p50", 0.50), ("p75", 0.75), ("p95", 0.95))


def agp_profile(r: GroupedReadings, group_tz: Sequence[str]) -> dict[str, npt.NDArray[Any]]:
    """AGP of every group: percentiles 5/25/50/75/95 (R type 7) of the interpolated 5-minute grid
    values per local time of day (iglu ``agp`` on ``CGMS2DayByDay``; unsmoothed). Returns columns
    group, minute_of_day, grid_points, p05 … p95 (one row per group and 5-minute time of day)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    grid = build_grid(r)
    ok = ~np.isnan(grid.v)
    minute = np.zeros(grid.t.size, dtype=np.int64)
    for gi in np.unique(grid.group):
        sel = grid.group == gi
        zone = ZoneInfo(group_tz[gi] or "UTC")
        hour = (grid.t[sel] // 3600).astype(np.int64)
        hours = np.unique(hour)  # UTC offsets per hour: a few DST changes at most
        offs = np.array([(datetime.fromtimestamp(h * 3600, zone).utcoffset()).total_seconds() for h in hours])  # type: ignore[union-attr]
        local = grid.t[sel] + offs[np.searchsorted(hours, hour)]
        minute[sel] = ((local % SECONDS_PER_DAY) // 60).astype(np.int64)
    slot = (minute // GRID_MINUTES) * GRID_MINUTES
    keys, inverse = np.unique((grid.group * 1440 + slot)[ok], return_inverse=True)
    qs = _gquantiles(grid.v[ok], inverse.reshape(-1).astype(np.int64), keys.size, [q for _, q in AGP_PERCENTILES])
    out: dict[str, npt.NDArray[Any]] = {
        "group": keys // 1440,
        "minute_of_day": keys % 1440,
        "grid_points": np.bincount(inverse.reshape(-1), minlength=keys.size),
    }
    for (name, _), q in zip(AGP_PERCENTILES, qs, strict=True):
        out[name] = q
    return out
