"""An independent, deliberately plain recomputation of iglu's metrics for ONE series at a time:
loops and per-group numpy as iglu's R code reads (CGMS2DayByDay, event_class, ...), used only by the
tests to check the vectorised workbench.metrics to 1e-9."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

DT = 5
PER_DAY = 288


def r_quantile(x: np.ndarray, p: float) -> float:
    x = np.sort(x)
    n = len(x)
    index = 1 + (n - 1) * p
    lo, hi = math.floor(index), math.ceil(index)
    h = index - lo
    return float((1 - h) * x[lo - 1] + h * x[hi - 1]) if h > 0 else float(x[lo - 1])


def r_round(x: float) -> float:
    return float(np.round(x))  # IEC 60559 half to even, as R


def day_by_day(t: np.ndarray, g: np.ndarray, tz: str) -> np.ndarray:
    """iglu CGMS2DayByDay: matrix days x 288."""
    order = np.argsort(t, kind="stable")
    t, g = t[order], g[order]
    keep = np.append(np.diff(t) != 0, True)
    t, g = t[keep], g[keep]
    ndays = math.ceil((t[-1] - t[0]) / 86400 + 1)
    first_local = datetime.fromtimestamp(t[0], ZoneInfo(tz))
    midnight = datetime(first_local.year, first_local.month, first_local.day, tzinfo=ZoneInfo(tz))
    min_d = midnight.timestamp()
    out = np.full(ndays * PER_DAY, np.nan)
    for i in range(ndays * PER_DAY):
        x = min_d + (i + 1) * DT * 60
        if x < t[0] or x > t[-1]:
            continue
        j = int(np.searchsorted(t, x, side="right")) - 1
        if t[j] == x:
            out[i] = g[j]
            continue
        if t[j + 1] - t[j] > 45 * 60:
            continue
        out[i] = g[j] + (g[j + 1] - g[j]) * ((x - t[j]) / (t[j + 1] - t[j]))
    return out.reshape(ndays, PER_DAY)


def nan_sd(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(np.std(x, ddof=1)) if len(x) > 1 else math.nan


def nan_mean(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(np.mean(x)) if len(x) else math.nan


def event_class(gl: np.ndarray, below: bool, threshold: float, dur: int, end: int) -> np.ndarray:
    """Literal translation of iglu's event_class for one segment (labels 1.. per event, 0 else)."""
    level = gl < threshold if below else gl > threshold
    runs = []  # (start, length, level)
    i = 0
    while i < len(level):
        j = i
        while j < len(level) and level[j] == level[i]:
            j += 1
        runs.append((i, j - i, bool(level[i])))
        i = j
    starts = [s for s, n, lv in runs if lv and n >= dur]
    ends = [0] + [s + 1 for s, n, lv in runs if (not lv) and n >= end] + [len(gl) + 1]  # 1-based
    pairs = []
    seen = set()
    for s in starts:
        s1 = s + 1
        e = min(x for x in ends if x > s1) - 1
        if e in seen:
            continue
        seen.add(e)
        pairs.append((s1, e))
    out = np.zeros(len(gl), dtype=int)
    for label, (s1, e) in enumerate(pairs, start=1):
        out[s1 - 1 : e] = label
    return out


def episodes(grid: np.ndarray, dur_minutes: int = 15, end_minutes: int = 15) -> dict[str, list[tuple[int, int]]]:
    """Per kind: list of (first, last) indices into the flat grid."""
    flat = grid.ravel()
    segs = []
    i = 0
    while i < len(flat):
        if np.isnan(flat[i]):
            i += 1
            continue
        j = i
        while j < len(flat) and not np.isnan(flat[j]):
            j += 1
        segs.append((i, j))
        i = j
    dur, end = math.ceil(dur_minutes / DT), math.ceil(end_minutes / DT)
    kinds = {
        "hypo1": (True, 70, dur),
        "hypo2": (True, 54, dur),
        "hypoext": (True, 70, 120 // DT + 1),
        "hyper1": (False, 180, dur),
        "hyper2": (False, 250, dur),
    }
    out: dict[str, list[tuple[int, int]]] = {k: [] for k in kinds}
    labels: dict[str, np.ndarray] = {k: np.zeros(len(flat), dtype=int) for k in kinds}
    for a, b in segs:
        for k, (below, thr, d) in kinds.items():
            lab = event_class(flat[a:b], below, thr, d, end)
            labels[k][a:b] = np.where(lab > 0, lab + a * 10000, 0)
            for lv in sorted(set(lab) - {0}):
                idx = np.flatnonzero(lab == lv)
                out[k].append((a + idx[0], a + idx[-1]))
    for typ in ("hypo", "hyper"):
        out[typ + "1excl"] = [(s, e) for s, e in out[typ + "1"] if not np.any(labels[typ + "2"][s : e + 1] > 0)]
    return out


def metrics(t: np.ndarray, g: np.ndarray, tz: str) -> dict[str, float]:
    """Every metric of one series (t epoch seconds, g mg/dL) in time zone tz."""
    g = np.asarray(g, dtype=float)
    n = len(g)
    out: dict[str, float] = {}
    mean = float(np.mean(g))
    sd = nan_sd(g)
    out["mean_glucose"], out["sd_glucose"] = mean, sd
    out["cv_glucose"] = 100 * sd / mean
    pct = lambda mask: 100.0 * float(np.sum(mask)) / n  # noqa: E731
    out["pct_in_range"] = pct((g >= 70) & (g <= 180))
    out["pct_below_70"] = pct(g < 70)
    out["pct_63_140"] = pct((g >= 63) & (g <= 140))
    out["pct_above_140"] = pct(g > 140)
    for name, p in (
        ("min_glucose", 0),
        ("q1_glucose", 0.25),
        ("median_glucose", 0.5),
        ("q3_glucose", 0.75),
        ("max_glucose", 1),
    ):
        out[name] = r_quantile(g, p)
    out["range_glucose"] = float(np.max(g) - np.min(g))
    out["iqr_glucose"] = out["q3_glucose"] - out["q1_glucose"]
    med = out["median_glucose"]
    out["mad"] = 1.4826 * r_quantile(np.abs(g - med), 0.5)
    grade = [min(425 * (math.log10(math.log10(x / 18)) + 0.16) ** 2, 50) for x in g]
    total = sum(grade)
    out["grade"] = total / n
    out["grade_hypo"] = 100 * sum(v for v, x in zip(grade, g, strict=False) if x < 80) / total
    out["grade_eugly"] = 100 * sum(v for v, x in zip(grade, g, strict=False) if 70 <= x <= 140) / total
    out["grade_hyper"] = 100 * sum(v for v, x in zip(grade, g, strict=False) if x > 140) / total
    out["m_value"] = sum(1000 * abs(math.log10(x / 90)) ** 3 for x in g) / n
    out["hyper_index"] = sum((x - 140) ** 1.1 for x in g if x > 140) / (n * 30)
    out["hypo_index"] = sum((80 - x) ** 2 for x in g if x < 80) / (n * 30)
    out["igc"] = out["hyper_index"] + out["hypo_index"]
    ir, br = out["pct_in_range"], out["pct_below_70"]
    f1 = min((ir > 0) * ir / 100, 1) * 0.5
    f2 = min((br < 15) * (br - 15) / (0 - 15), 1) * 0.35
    f3 = min((sd < 108) * (sd - 108) / (18 - 108), 1) * 0.15 if not math.isnan(sd) else math.nan
    out["cogi"] = 100 * (f1 + f2 + f3)
    # active percent (automatic)
    ts = np.sort(t)
    span = (ts[-1] - ts[0]) / 60
    theo = r_round(r_round(span) / DT) + 1
    diffs = np.diff(ts) / 60
    gaps = [d for d in diffs if r_round(d) > DT]
    missing = r_round((sum(gaps) - len(gaps) * DT) / DT)
    out["active_percent"] = 100 * (theo - missing) / theo

    m = day_by_day(t, g, tz)
    flat = m.ravel()

    def lagdiff(lag: int) -> np.ndarray:
        return flat[lag:] - flat[:-lag] if len(flat) > lag else np.empty(0)

    d288 = lagdiff(288)
    out["modd"] = nan_mean(np.abs(d288))
    out["conga_24"] = nan_sd(d288)
    out["conga_1"] = nan_sd(lagdiff(12))
    d1 = lagdiff(1)
    d1 = d1[~np.isnan(d1)]
    out["mag"] = float(np.sum(np.abs(d1)) / (len(d1) * (DT / 60))) if len(d1) else math.nan
    out["gvp"] = (float(np.sum(np.sqrt(DT**2 + d1**2))) / (len(d1) * DT) - 1) * 100 if len(d1) else math.nan
    out["sd_roc"] = nan_sd(lagdiff(3) / 15)
    row_cv = np.array([100 * nan_sd(r) / nan_mean(r) for r in m])
    out["cv_mean"] = nan_mean(row_cv)
    out["cv_sd"] = nan_sd(row_cv)
    out["sd_w"] = nan_mean(np.array([nan_sd(r) for r in m]))
    out["sd_hhmm"] = nan_sd(np.array([nan_mean(c) for c in m.T]))
    row_means = np.array([nan_mean(r) for r in m])
    out["sd_dm"] = nan_sd(row_means)
    out["sd_b"] = nan_mean(np.array([nan_sd(c) for c in m.T]))
    out["sd_b_dm"] = nan_mean(np.array([nan_sd(c) for c in (m - row_means[:, None]).T]))
    wins = [nan_sd(flat[i : i + 12]) for i in range(len(flat) - 11)]
    out["sd_ws_h"] = nan_mean(np.array(wins))
    hourly = []
    for r in m:
        areas = [(DT / 60) * (r[i] + r[i + 1]) / 2 for i in range(len(r) - 1)]
        areas = [a for a in areas if not math.isnan(a)]
        if areas:
            hourly.append(sum(areas) / (DT / 60 * len(areas)))
    out["auc_hourly"] = float(np.mean(hourly)) if hourly else math.nan
    ep = episodes(m)
    days = float(np.sum(~np.isnan(flat))) * DT / 1440
    names = {
        "hypo_lv1_per_day": "hypo1",
        "hypo_lv2_per_day": "hypo2",
        "hypo_extended_per_day": "hypoext",
        "hyper_lv1_per_day": "hyper1",
        "hyper_lv2_per_day": "hyper2",
        "hypo_lv1_excl_per_day": "hypo1excl",
        "hyper_lv1_excl_per_day": "hyper1excl",
    }
    for col, k in names.items():
        out[col] = len(ep[k]) / days if days else math.nan
    ep20 = episodes(m, 20, 30)
    f_gvp = 1 + 9 / (1 + math.exp(-0.049 * (out["gvp"] - 65.47))) if not math.isnan(out["gvp"]) else math.nan
    f_ptir = 1 + 9 / (1 + math.exp(0.0833 * (ir - 55.04)))
    f_mg = 1 + 9 * (1 / (1 + math.exp(0.1139 * (mean - 72.08))) + 1 / (1 + math.exp(-0.09195 * (mean - 157.57))))
    f_h54 = 0.5 + 4.5 * (1 - math.exp(-0.81093 * (len(ep20["hypo2"]) / days if days else math.nan) * 7))
    n70 = (len(ep20["hypo1excl"]) / days if days else math.nan) * 7
    f_h70 = 0.5714 * n70 + 0.625 if n70 <= 7.65 else 5
    out["pgs"] = f_gvp + f_ptir + f_mg + f_h54 + f_h70
    out["_episodes"] = ep  # type: ignore[assignment]
    out["_grid"] = m  # type: ignore[assignment]
    return out


def local_parts(t: np.ndarray, tz: str) -> tuple[np.ndarray, np.ndarray]:
    """Local date (days since epoch) and UTC offset (seconds) of each instant."""
    zone = ZoneInfo(tz)
    days, offs = [], []
    for x in t:
        d = datetime.fromtimestamp(float(x), zone)
        off = d.utcoffset() or timedelta(0)
        days.append((d.date() - datetime(1970, 1, 1, tzinfo=UTC).date()).days)
        offs.append(off.total_seconds())
    return np.array(days), np.array(offs)
