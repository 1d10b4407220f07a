"""Period summaries from the daily metrics mart, and the headline cards with consensus targets.

A period's metrics are recombined exactly from the per-day rows of `marts.mrt_glucose_daily_metrics`
(no raw readings needed, so this works on the published PostgreSQL marts too): percentages are
reading-weighted means of the daily percentages (percentages are shares of readings), the mean is
the reading-weighted mean, and the sample SD is pooled from each day's count, mean and SD
(total sum of squares = Σ (nᵢ−1)·sᵢ² + nᵢ·(mᵢ − m)²). Targets follow the International Consensus on
Time in Range (Battelino et al., Diabetes Care 2019); GRI follows Klonoff et al. 2023.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date

import pandas as pd

from workbench import metrics
from workbench.viz.errors import NoGlucoseDataError

READINGS_PER_DAY = metrics.READINGS_PER_DAY  # one CGM reading every 5 minutes


@dataclass(frozen=True)
class GlucoseRange:
    """One of the five consensus glucose ranges (mg/dL) and its column in the daily mart."""

    key: str
    label: str
    column: str
    color: str


#: The consensus range limits (mg/dL), by their one definition in workbench.metrics.
VERY_LOW, TARGET_LOW, TARGET_HIGH, VERY_HIGH = (
    int(metrics.HYPO_LV2),
    int(metrics.HYPO_LV1),
    int(metrics.HYPER_LV1),
    int(metrics.HYPER_LV2),
)

# Bottom to top, as drawn in the AGP report's time-in-ranges bar.
RANGES: tuple[GlucoseRange, ...] = (
    GlucoseRange("very_low", f"Very low (<{VERY_LOW})", "pct_very_low", "#a50f15"),
    GlucoseRange("low", f"Low ({VERY_LOW}–{TARGET_LOW - 1})", "pct_low", "#ef3b2c"),
    GlucoseRange("in_range", f"In range ({TARGET_LOW}–{TARGET_HIGH})", "pct_in_range", "#31a354"),
    GlucoseRange("high", f"High ({TARGET_HIGH + 1}–{VERY_HIGH})", "pct_high", "#fdae6b"),
    GlucoseRange("very_high", f"Very high (>{VERY_HIGH})", "pct_very_high", "#e6550d"),
)


@dataclass(frozen=True)
class PeriodSummary:
    """Consensus metrics of one patient over one period (start and end inclusive, local days)."""

    patient_id: str
    start: date
    end: date
    days: int
    days_with_data: int
    reading_count: int
    mean_glucose: float
    sd_glucose: float
    cv_glucose: float
    gmi: float
    pct_very_low: float
    pct_low: float
    pct_in_range: float
    pct_high: float
    pct_very_high: float
    pct_below_70: float
    pct_above_180: float
    gri: float
    pct_readings_present: float

    def as_dict(self) -> dict[str, object]:
        """Plain dict (for DataFrames and reports)."""
        return asdict(self)


def gri(very_low: float, low: float, high: float, very_high: float) -> float:
    """Glycemia Risk Index from the four range percentages (the one definition in workbench.metrics)."""
    return float(metrics.gri_from_ranges(very_low, low, high, very_high))


def gri_zone(value: float) -> str:
    """GRI zone A (lowest risk, 0–20) to E (80–100)."""
    for limit, zone in ((20, "A"), (40, "B"), (60, "C"), (80, "D")):
        if value <= limit:
            return zone
    return "E"


def summarize_period(daily: pd.DataFrame, patient_id: str, start: date, end: date) -> PeriodSummary:
    """Combine the daily mart rows of one patient between start and end (inclusive) into one summary."""
    if end < start:
        raise NoGlucoseDataError(f"the period ends ({end}) before it starts ({start}); pick an end after the start")
    days = (end - start).days + 1
    dates = pd.to_datetime(daily["reading_date"]).dt.date if len(daily) else pd.Series([], dtype=object)
    rows = daily[(daily["patient_id"] == patient_id) & (dates >= start) & (dates <= end)]
    rows = rows[rows["reading_count"] > 0]
    if rows.empty:
        raise NoGlucoseDataError(
            f"no glucose readings for patient {patient_id!r} between {start} and {end}; pick another period"
        )
    n = rows["reading_count"].astype(float)
    total = float(n.sum())
    mean = float((n * rows["mean_glucose"]).sum() / total)
    within = ((n - 1) * rows["sd_glucose"].fillna(0.0) ** 2).sum()
    between = (n * (rows["mean_glucose"] - mean) ** 2).sum()
    sd = math.sqrt(float(within + between) / (total - 1)) if total > 1 else math.nan

    def share(column: str) -> float:
        return float((n * rows[column]).sum() / total)

    very_low, low, in_range = share("pct_very_low"), share("pct_low"), share("pct_in_range")
    high, very_high = share("pct_high"), share("pct_very_high")
    return PeriodSummary(
        patient_id=patient_id,
        start=start,
        end=end,
        days=days,
        days_with_data=int(rows["reading_date"].nunique()),
        reading_count=int(total),
        mean_glucose=mean,
        sd_glucose=sd,
        cv_glucose=100.0 * sd / mean if mean else math.nan,
        gmi=float(metrics.gmi_from_mean(mean)),
        pct_very_low=very_low,
        pct_low=low,
        pct_in_range=in_range,
        pct_high=high,
        pct_very_high=very_high,
        pct_below_70=very_low + low,
        pct_above_180=high + very_high,
        gri=gri(very_low, low, high, very_high),
        pct_readings_present=100.0 * total / (days * READINGS_PER_DAY),
    )


@dataclass(frozen=True)
class Card:
    """A headline number with its consensus target; `met` is None when there is no target."""

    key: str
    label: str
    value: float
    unit: str
    decimals: int
    target: str | None
    met: bool | None

    @property
    def text(self) -> str:
        """The value formatted for display."""
        if math.isnan(self.value):
            return "–"
        return f"{self.value:.{self.decimals}f}{self.unit}"


def headline_cards(summary: PeriodSummary) -> list[Card]:
    """Mean, GMI, CV, TIR, TBR, TAR, GRI and % data present, each beside its consensus target."""
    s = summary
    below_54 = s.pct_very_low
    active = metrics.SUFFICIENT_ACTIVE_PERCENT
    return [
        Card("mean", "Mean glucose", s.mean_glucose, " mg/dL", 0, None, None),
        Card("gmi", "GMI", s.gmi, " %", 1, None, None),
        Card("cv", "CV", s.cv_glucose, " %", 1, "≤36 %", s.cv_glucose <= 36),
        Card("tir", f"TIR {TARGET_LOW}–{TARGET_HIGH}", s.pct_in_range, " %", 1, ">70 %", s.pct_in_range > 70),
        Card("tbr70", f"TBR <{TARGET_LOW}", s.pct_below_70, " %", 1, "<4 %", s.pct_below_70 < 4),
        Card("tbr54", f"TBR <{VERY_LOW}", below_54, " %", 1, "<1 %", below_54 < 1),
        Card("tar180", f"TAR >{TARGET_HIGH}", s.pct_above_180, " %", 1, "<25 %", s.pct_above_180 < 25),
        Card("tar250", f"TAR >{VERY_HIGH}", s.pct_very_high, " %", 1, "<5 %", s.pct_very_high < 5),
        Card("gri", f"GRI (zone {gri_zone(s.gri)})", s.gri, "", 0, None, None),
        Card(
            "present",
            "Data present",
            s.pct_readings_present,
            " %",
            0,
            f"≥{active:.0f} %",
            s.pct_readings_present >= active,
        ),
    ]
