"""Glucose metrics: the one definition used by dbt (SQL macros mirror the simple ones, the DuckDB
UDFs call these functions), notebooks, dashboards and tests.

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
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

GRID_MINUTES = 5
INTER_GAP_MINUTES = 45
MAGE_MAX_GAP_MINUTES = 180
READINGS_PER_DAY = 24 * 60 // GRID_MINUTES


def _arr(values: Sequence[float] | npt.ArrayLike) -> FloatArray:
    a = np.asarray(values, dtype=np.float64)
    return a[~np.isnan(a)]


# ---- distribution metrics --------------------------------------------------------------------


def mean_glucose(glucose: npt.ArrayLike) -> float:
    """Mean glucose (mg/dL); NaN for no readings."""
    g = _arr(glucose)
    return float(g.mean()) if g.size else math.nan


def sd_glucose(glucose: npt.ArrayLike) -> float:
    """Sample standard deviation (n−1), as iglu's ``sd_glu``; NaN for fewer than two readings."""
    g = _arr(glucose)
    return float(g.std(ddof=1)) if g.size > 1 else math.nan


def cv_glucose(glucose: npt.ArrayLike) -> float:
    """Coefficient of variation in percent: 100·SD/mean."""
    return 100.0 * sd_glucose(glucose) / mean_glucose(glucose)


def gmi(glucose: npt.ArrayLike) -> float:
    """Glucose Management Indicator (%): 3.31 + 0.02392·mean (Bergenstal 2018)."""
    return 3.31 + 0.02392 * mean_glucose(glucose)


def ea1c(glucose: npt.ArrayLike) -> float:
    """Estimated A1c (%): (mean + 46.7)/28.7 (ADAG, Nathan 2008)."""
    return (mean_glucose(glucose) + 46.7) / 28.7


def j_index(glucose: npt.ArrayLike) -> float:
    """J-index: 0.001·(mean + SD)² (Wojcicki 1995)."""
    return 0.001 * (mean_glucose(glucose) + sd_glucose(glucose)) ** 2


def _share(mask: npt.NDArray[np.bool_]) -> float:
    return float(100.0 * mask.mean()) if mask.size else math.nan


def pct_in_range(glucose: npt.ArrayLike, low: float = 70, high: float = 180) -> float:
    """Percent of readings with low ≤ g ≤ high (inclusive, as iglu ``in_range_percent``)."""
    g = _arr(glucose)
    return _share((g >= low) & (g <= high))


def pct_below(glucose: npt.ArrayLike, threshold: float) -> float:
    """Percent of readings strictly below the threshold (TBR)."""
    g = _arr(glucose)
    return _share(g < threshold)


def pct_above(glucose: npt.ArrayLike, threshold: float) -> float:
    """Percent of readings strictly above the threshold (TAR)."""
    g = _arr(glucose)
    return _share(g > threshold)


def gri(glucose: npt.ArrayLike) -> float:
    """Glycemia Risk Index (Klonoff 2023), capped at 100."""
    very_low = pct_below(glucose, 54)
    low = pct_below(glucose, 70) - very_low
    very_high = pct_above(glucose, 250)
    high = pct_above(glucose, 180) - very_high
    return min(3.0 * very_low + 2.4 * low + 1.6 * very_high + 0.8 * high, 100.0)


def _risk(glucose: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Kovatchev's low and high risk values rl, rh for every reading."""
    g = _arr(glucose)
    f = 1.509 * (np.log(g) ** 1.084 - 5.381)
    r = 10.0 * f**2
    return np.where(f < 0, r, 0.0), np.where(f > 0, r, 0.0)


def lbgi(glucose: npt.ArrayLike) -> float:
    """Low Blood Glucose Index: mean of rl over all readings."""
    rl, _ = _risk(glucose)
    return float(rl.mean()) if rl.size else math.nan


def hbgi(glucose: npt.ArrayLike) -> float:
    """High Blood Glucose Index: mean of rh over all readings."""
    _, rh = _risk(glucose)
    return float(rh.mean()) if rh.size else math.nan


def adrr(glucose: npt.ArrayLike, days: Sequence[object] | npt.ArrayLike) -> float:
    """Average Daily Risk Range: mean over days of (max rl + max rh); ``days`` labels each reading
    with its (patient-local) day."""
    g = np.asarray(glucose, dtype=np.float64)
    d = np.asarray(days)
    keep = ~np.isnan(g)
    g, d = g[keep], d[keep]
    if not g.size:
        return math.nan
    rl, rh = _risk(g)
    totals = [rl[d == day].max() + rh[d == day].max() for day in np.unique(d)]
    return float(np.mean(totals))


# ---- time-based metrics on the interpolated grid ---------------------------------------------


def interpolate_grid(
    glucose: npt.ArrayLike,
    times_s: npt.ArrayLike,
    *,
    dt_minutes: int = GRID_MINUTES,
    inter_gap_minutes: float = INTER_GAP_MINUTES,
) -> FloatArray:
    """Glucose on a uniform grid of ``dt_minutes`` aligned to the epoch (hence to every local
    midnight), from the first to the last reading; NaN where readings are more than
    ``inter_gap_minutes`` apart (iglu ``CGMS2DayByDay``). Duplicate times keep the last value."""
    g = np.asarray(glucose, dtype=np.float64)
    t = np.asarray(times_s, dtype=np.float64)
    keep = ~(np.isnan(g) | np.isnan(t))
    g, t = g[keep], t[keep]
    if g.size == 0:
        return np.empty(0)
    order = np.argsort(t, kind="stable")
    g, t = g[order], t[order]
    last_of_dup = np.append(np.diff(t) != 0, True)
    g, t = g[last_of_dup], t[last_of_dup]
    step = dt_minutes * 60.0
    start = math.ceil(t[0] / step) * step
    grid = np.arange(start, t[-1] + 1e-9, step)
    if grid.size == 0:
        return np.empty(0)
    values = np.interp(grid, t, g)
    gaps = np.flatnonzero(np.diff(t) > inter_gap_minutes * 60.0)
    for i in gaps:
        values[(grid > t[i]) & (grid < t[i + 1])] = np.nan
    return values


def modd(glucose: npt.ArrayLike, times_s: npt.ArrayLike, lag_days: int = 1) -> float:
    """Mean Of Daily Differences: mean |g(t) − g(t − 24 h)| on the interpolated grid (iglu ``modd``)."""
    return _modd_grid(interpolate_grid(glucose, times_s), lag_days)


def _modd_grid(grid: FloatArray, lag_days: int = 1) -> float:
    lag = lag_days * READINGS_PER_DAY
    if grid.size <= lag:
        return math.nan
    diffs = np.abs(grid[lag:] - grid[:-lag])
    diffs = diffs[~np.isnan(diffs)]
    return float(diffs.mean()) if diffs.size else math.nan


def conga(glucose: npt.ArrayLike, times_s: npt.ArrayLike, hours: int = 1) -> float:
    """Continuous Overall Net Glycemic Action: SD of g(t) − g(t − n h) on the grid (iglu ``conga``)."""
    return _conga_grid(interpolate_grid(glucose, times_s), hours)


def _conga_grid(grid: FloatArray, hours: int = 1) -> float:
    lag = hours * 60 // GRID_MINUTES
    if grid.size <= lag:
        return math.nan
    diffs = grid[lag:] - grid[:-lag]
    diffs = diffs[~np.isnan(diffs)]
    return float(diffs.std(ddof=1)) if diffs.size > 1 else math.nan


def _rolling_mean_right(x: FloatArray, width: int) -> FloatArray:
    """zoo::rollapply(x, width, mean, align='right', fill=NA, na.rm=TRUE)."""
    out = np.full(x.size, np.nan)
    valid = ~np.isnan(x)
    csum = np.concatenate([[0.0], np.cumsum(np.where(valid, x, 0.0))])
    ccount = np.concatenate([[0], np.cumsum(valid)])
    if x.size >= width:
        sums = csum[width:] - csum[:-width]
        counts = ccount[width:] - ccount[:-width]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[width - 1 :] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return out


def _mage_segment(gl: FloatArray, short_ma: int, long_ma: int) -> tuple[float, float] | None:
    """MAGE+ and MAGE− of one segment without long gaps (iglu ``mage_atomic``); None if too short."""
    n = gl.size
    if np.all(np.isnan(gl)) or n < 7 or n < long_ma:
        return None
    ma_short = _rolling_mean_right(gl, short_ma)
    ma_long = _rolling_mean_right(gl, long_ma)
    ma_short[:short_ma] = ma_short[short_ma - 1]
    ma_long[:long_ma] = ma_long[long_ma - 1]
    delta = ma_short - ma_long

    rel_min, rel_max = 0, 1
    cross_idx = [0]
    cross_type = [rel_max if delta[0] > 0 else rel_min]
    # iglu walks every point; a crossing can only happen where the sign of delta changes or right
    # after a point that could not be compared (NaN), so only those candidates are visited.
    ok = ~(np.isnan(gl) | np.isnan(delta))
    valid = np.zeros(n, dtype=bool)
    valid[1:] = ok[1:] & ok[:-1]
    sign = np.sign(np.nan_to_num(delta))
    valid_before = np.zeros(n, dtype=bool)
    valid_before[1:] = valid[:-1]
    changed = np.zeros(n, dtype=bool)
    changed[1:] = sign[1:] != sign[:-1]
    candidates = np.flatnonzero(valid & (changed | ~valid_before))
    for i in candidates.tolist():
        if delta[i] * delta[i - 1] < 0:
            cross_idx.append(i)
            cross_type.append(rel_min if delta[i] < delta[i - 1] else rel_max)
        elif delta[i] * delta[cross_idx[-1]] < 0:
            prev = delta[cross_idx[-1]]
            cross_idx.append(i)
            cross_type.append(rel_min if delta[i] < prev else rel_max)
    cross_idx.append(n - 1)
    cross_type.append(rel_max if delta[n - 1] > 0 else rel_min)

    num_extrema = len(cross_idx) - 1
    minmax = np.full(num_extrema, np.nan)
    indexes = np.zeros(num_extrema, dtype=int)
    for i in range(num_extrema):
        s1 = cross_idx[0] if i == 0 else indexes[i - 1]
        s2 = cross_idx[i + 1]
        window = gl[s1 : s2 + 1]
        if np.all(np.isnan(window)):
            minmax[i] = np.nan
            indexes[i] = s1
            continue
        k = int(np.nanargmin(window)) if cross_type[i] == rel_min else int(np.nanargmax(window))
        minmax[i] = window[k]
        indexes[i] = s1 + k

    sd = float(np.nanstd(gl, ddof=1))
    big_n = minmax.size

    def diff(i: int, j: int) -> float:  # iglu: differences[i, j] = minmax[j] - minmax[i]
        return float(minmax[j] - minmax[i])

    plus: list[float] = []
    j = prev_j = 0
    while j < big_n:
        start_j = j
        deltas = minmax[j] - minmax[prev_j : j + 1]
        i = int(np.argmax(deltas)) + prev_j
        if deltas.max() >= sd:
            for k in range(j, big_n):
                if minmax[k] > minmax[j]:
                    j = k
                if diff(j, k) < -sd or k == big_n - 1:
                    plus.append(float(minmax[j] - minmax[i]))
                    prev_j = k
                    j = k
                    break
        if j == start_j:  # no progress (always the case when sd == 0, a flat trace): move on
            j += 1

    minus: list[float] = []
    j = prev_j = 0
    while j < big_n:
        start_j = j
        deltas = minmax[j] - minmax[prev_j : j + 1]
        i = int(np.argmin(deltas)) + prev_j
        if deltas.min() <= -sd:
            for k in range(j, big_n):
                if minmax[k] < minmax[j]:
                    j = k
                if diff(j, k) > sd or k == big_n - 1:
                    minus.append(float(minmax[j] - minmax[i]))
                    prev_j = j
                    j = k
                    break
        if j == start_j:  # no progress (always the case when sd == 0, a flat trace): move on
            j += 1

    if not plus and not minus:
        return None
    return (
        float(np.mean(plus)) if plus else math.nan,
        float(abs(np.mean(minus))) if minus else math.nan,
    )


def mage(
    glucose: npt.ArrayLike,
    times_s: npt.ArrayLike,
    *,
    short_ma: int = 5,
    long_ma: int = 32,
    max_gap_minutes: float = MAGE_MAX_GAP_MINUTES,
) -> float:
    """Mean Amplitude of Glycemic Excursions by iglu's moving-average method (``direction='avg'``):
    the trace is interpolated to the 5-minute grid, split at gaps longer than ``max_gap_minutes``,
    turning points are found between crossings of the short and long moving averages, excursions
    larger than the segment's SD are averaged (MAGE+ and MAGE−), and segments are weighted by length.
    """
    return _mage_grid(interpolate_grid(glucose, times_s), short_ma, long_ma, max_gap_minutes)


def _mage_grid(grid: FloatArray, short_ma: int, long_ma: int, max_gap_minutes: float) -> float:
    if grid.size == 0 or np.all(np.isnan(grid)):
        return math.nan
    valid = np.flatnonzero(~np.isnan(grid))
    grid = grid[valid[0] : valid[-1] + 1]
    if grid.size < 7 or grid.size < long_ma:
        return math.nan
    # Segments: runs of the trace separated by NaN runs longer than max_gap.
    segments: list[FloatArray] = []
    is_gap = np.isnan(grid)
    start = 0
    i = 0
    while i < grid.size:
        if is_gap[i]:
            j = i
            while j < grid.size and is_gap[j]:
                j += 1
            if (j - i) * GRID_MINUTES > max_gap_minutes:
                if i > start:
                    segments.append(grid[start:i])
                start = j
            i = j
        else:
            i += 1
    if start < grid.size:
        segments.append(grid[start:])
    weighted = 0.0
    total = 0.0
    for seg in segments:
        result = _mage_segment(seg, short_ma, long_ma)
        if result is None:
            continue
        hours = (seg.size - 1) * GRID_MINUTES / 60.0
        for value in result:
            if not math.isnan(value):
                weighted += value * hours
                total += hours
    return weighted / total if total else math.nan


def variability(glucose: npt.ArrayLike, times_s: npt.ArrayLike) -> tuple[float, float, float]:
    """(MAGE, MODD, CONGA-1) from one interpolation of the series (what the SQL UDF returns)."""
    grid = interpolate_grid(glucose, times_s)
    return (
        _mage_grid(grid, 5, 32, MAGE_MAX_GAP_MINUTES),
        _modd_grid(grid),
        _conga_grid(grid, 1),
    )


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
    g = np.asarray(glucose, dtype=np.float64)
    below_70, below_54 = pct_below(g, 70), pct_below(g, 54)
    above_180, above_250 = pct_above(g, 180), pct_above(g, 250)
    return GlucoseSummary(
        reading_count=int((~np.isnan(g)).sum()),
        mean_glucose=mean_glucose(g),
        sd_glucose=sd_glucose(g),
        cv_glucose=cv_glucose(g),
        gmi=gmi(g),
        ea1c=ea1c(g),
        pct_very_low=below_54,
        pct_low=below_70 - below_54,
        pct_in_range=pct_in_range(g, 70, 180),
        pct_high=above_180 - above_250,
        pct_very_high=above_250,
        pct_below_70=below_70,
        pct_above_180=above_180,
        pct_tight_range=pct_in_range(g, 70, 140),
        gri=gri(g),
        lbgi=lbgi(g),
        hbgi=hbgi(g),
        j_index=j_index(g),
        adrr=adrr(g, days),
        mage=mage(g, times_s),
        modd=modd(g, times_s),
        conga_1=conga(g, times_s, 1),
    )
