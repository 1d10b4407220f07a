"""The glucose overview for one patient, period and ref: what the Voila dashboard, the CGM analysis
notebook and the static report display.

The dashboard's controls are a plain HTML form (GET): choosing a patient, ref or dates reloads the
page with `?patient=..&ref=..&start=..&end=..`, which Voila hands to the kernel as QUERY_STRING.
Every view is therefore a bookmarkable URL, and the page needs no widget library.

```python
view = load_view(ref="main", patient="p001", days=14)
view.agp_figure(); view.time_in_ranges_figure(); view.cards_html()
```
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs

import pandas as pd
import plotly.graph_objects as go

from workbench.errors import CascadeError
from workbench.lake.api import MAIN_BRANCH
from workbench.metrics import SUFFICIENT_ACTIVE_PERCENT, SUFFICIENT_DAYS, is_sufficient
from workbench.settings import Settings, get_settings, page_query_string
from workbench.viz import figures
from workbench.viz.data import GlucoseData, SourceChoice, Sufficiency, TodaySoFar
from workbench.viz.errors import NoGlucoseDataError, UnknownPatientError, VizError
from workbench.viz.summary import Card, PeriodSummary, headline_cards, summarize_period

DEFAULT_DAYS = 14  # the consensus AGP period
PROFILE_DAYS = 14  # daily glucose profiles: the last 14 days of the period, as the AGP report


def query_params(
    query: str | None = None,
    *,
    ref: str = MAIN_BRANCH,
    patient: str | None = None,
    days: int = DEFAULT_DAYS,
    start: str | date | None = None,
    end: str | date | None = None,
    source: SourceChoice = "auto",
) -> dict[str, Any]:
    """Keyword arguments for `load_view`: the notebook's parameters overridden by the page's query
    string (`query`, default Voila's QUERY_STRING)."""
    if query is None:
        query = request_query()
    values = {k: v[-1] for k, v in parse_qs(query).items() if v and v[-1]}
    chosen: dict[str, Any] = {
        "ref": ref,
        "patient": patient,
        "days": days,
        "start": start,
        "end": end,
        "source": source,
    }
    for key in ("ref", "patient", "start", "end"):
        if key in values:
            chosen[key] = values[key]
    if "days" in values:
        try:
            chosen["days"] = max(1, int(values["days"]))
        except ValueError:
            raise VizError(f"days must be a whole number, not {values['days']!r}") from None
    if values.get("source") in ("auto", "postgres", "lake"):
        chosen["source"] = values["source"]
    return chosen


def request_query() -> str:
    """The page's query string. Under Voila with preheated kernels this waits for the request
    (the cells before it ran ahead of time); elsewhere it returns at once ('' outside Voila)."""
    try:
        from voila.utils import wait_for_request
    except ImportError:  # pragma: no cover - voila is a dependency
        return page_query_string()
    wait_for_request()
    return page_query_string()


def warm_up(ref: str = MAIN_BRANCH, source: SourceChoice = "auto", settings: Settings | None = None) -> GlucoseData:
    """Open the data source and bind the lake's views ahead of a request (Voila preheated kernels)."""
    data = GlucoseData(ref=ref, source=source, settings=settings or get_settings())
    data.patients()
    return data


def _as_date(value: str | date | None, name: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise VizError(f"{name} must be a date like 2026-01-31, not {value!r}") from None


@dataclass
class GlucoseView:
    """Everything the overview shows for one patient and period (figures are built on demand)."""

    data: GlucoseData
    patients: pd.DataFrame
    patient_id: str
    start: date
    end: date
    daily: pd.DataFrame = field(repr=False)
    summary: PeriodSummary | None
    agp: pd.DataFrame = field(repr=False)
    agp_source: str
    error: str | None = None
    notices: list[str] = field(default_factory=list)  # what the page asked for and could not get
    today: TodaySoFar | None = None  # the day in progress, shown apart from the period
    sufficiency: Sufficiency | None = None  # None when the period has no data

    @property
    def ref(self) -> str:
        return self.data.ref

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def cards(self) -> list[Card]:
        return headline_cards(self.summary) if self.summary else []

    def _notice(self) -> Any:
        from IPython.display import HTML

        return HTML(f'<p class="cascade-notice" style="color:#b91c1c">{html.escape(self.error or "")}</p>')

    # ---- displays (a figure, or a notice when the period has no data) --------------------------
    def trend_figure(self) -> go.Figure:
        return figures.daily_trend_figure(self.daily)

    def time_in_ranges_figure(self) -> go.Figure:
        if self.summary is None:
            raise NoGlucoseDataError(self.error or "no data")
        return figures.time_in_ranges_figure(self.summary)

    def agp_figure(self) -> go.Figure:
        title = f"Ambulatory glucose profile, {self.start:%d %b} – {self.end:%d %b %Y} ({self.days} days)"
        return figures.agp_figure(self.agp, title=title)

    def stats_frame(self) -> pd.DataFrame:
        return figures.daily_stats_frame(self.daily)

    @property
    def profile_days(self) -> list[date]:
        """The days of the daily profiles: the last `PROFILE_DAYS` days of the period."""
        first = max(self.start, self.end - timedelta(days=PROFILE_DAYS - 1))
        return [first + timedelta(days=i) for i in range((self.end - first).days + 1)]

    def profiles_figure(self) -> go.Figure:
        """Daily glucose profiles (last 14 days of the period) with carbohydrate and bolus markers."""
        days = self.profile_days
        readings = self.data.readings(self.patient_id, days[0], days[-1])
        treatments = self.data.treatments(self.patient_id, days[0], days[-1])
        return figures.daily_profiles_figure(readings, days, treatments)

    def today_html(self) -> str:
        return figures.today_html(self.today)

    def sufficiency_html(self) -> str:
        """A warning when the period's data are not sufficient by consensus ('' when they are)."""
        s = self.sufficiency
        if s is None or s.sufficient:
            return ""
        return (
            '<p id="cascade-insufficient" class="cascade-warning" style="color:#b45309;font-weight:600;'
            'margin:4px 0">⚠ Not enough data for reliable metrics: '
            f"{s.days_with_data} days with data (≥ {SUFFICIENT_DAYS} needed), "
            f"{s.active_percent:.0f} % CGM active (≥ {SUFFICIENT_ACTIVE_PERCENT:.0f} % needed) — "
            "International Consensus on Time in Range.</p>"
        )

    def show(self, part: str) -> Any:
        """A displayable part: 'cards', 'today', 'trend', 'ranges', 'agp', 'profiles' or 'stats'. When
        the period has no data the notice is shown once (with 'cards', the first part) and the other
        parts are empty, but for 'today' (the day in progress is apart from the period)."""
        from IPython.display import HTML

        if self.error and part != "today":
            return self._notice() if part == "cards" else HTML("")

        builders: dict[str, Any] = {
            "cards": lambda: HTML(self.cards_html()),
            "trend": self.trend_figure,
            "ranges": self.time_in_ranges_figure,
            "agp": self.agp_figure,
            "stats": self.stats_frame,
            "today": lambda: HTML(self.today_html()),
            "profiles": self.profiles_figure,
        }
        if part not in builders:
            raise VizError(f"unknown part {part!r}; choose one of {', '.join(builders)}")
        return builders[part]()

    def cards_html(self) -> str:
        return figures.cards_html(self.cards)

    def header_html(self) -> str:
        name = self.patients.set_index("patient_id").loc[self.patient_id, "display_name"]
        sources = {self.data.source_of("marts.mrt_glucose_daily_metrics"), self.agp_source}
        notices = "".join(
            f'<p class="cascade-notice" style="color:#b91c1c;margin:4px 0">{html.escape(n)}</p>' for n in self.notices
        )
        return (
            f"{notices}"
            f'<h2 style="margin:4px 0">{html.escape(str(name))} ({html.escape(self.patient_id)})</h2>'
            f'<p style="margin:0;color:#4b5563">{self.start:%a %d %b %Y} – {self.end:%a %d %b %Y} '
            f'({self.days} days) · <b id="cascade-provenance">{html.escape(self.data.provenance())}</b> · data from '
            f"{html.escape(', '.join(sorted(sources)))}</p>"
            f"{self.sufficiency_html()}"
        )

    def controls_html(self, refs: list[str] | None = None) -> str:
        """The GET form that picks patient, ref and dates (patient/ref changes submit at once)."""
        refs = refs if refs is not None else self.data.refs()
        if self.ref not in refs:
            refs = [self.ref, *refs]

        def options(values: list[tuple[str, str]], chosen: str) -> str:
            return "".join(
                f'<option value="{html.escape(v)}"{" selected" if v == chosen else ""}>{html.escape(label)}</option>'
                for v, label in values
            )

        patients = [
            (p, f"{n} ({p})") for p, n in zip(self.patients["patient_id"], self.patients["display_name"], strict=True)
        ]
        style = "margin-right:12px"
        return (
            '<form id="cascade-controls" method="get" action="" style="display:flex;flex-wrap:wrap;'
            'align-items:center;gap:6px;font-family:system-ui,sans-serif">'
            f'<label style="{style}">Patient <select name="patient" id="cascade-patient" '
            "onchange=\"this.form.start.value='';this.form.end.value='';this.form.submit()\">"
            f"{options(patients, self.patient_id)}</select></label>"
            f'<label style="{style}">From <input type="date" name="start" id="cascade-start" value="{self.start}"></label>'
            f'<label style="{style}">To <input type="date" name="end" id="cascade-end" value="{self.end}"></label>'
            f'<label style="{style}">Ref <select name="ref" id="cascade-ref" onchange="this.form.submit()">'
            f"{options([(r, r) for r in refs], self.ref)}</select></label>"
            '<button type="submit" id="cascade-show">Show</button></form>'
        )


def load_view(
    ref: str = MAIN_BRANCH,
    patient: str | None = None,
    days: int = DEFAULT_DAYS,
    start: str | date | None = None,
    end: str | date | None = None,
    source: SourceChoice = "auto",
    settings: Settings | None = None,
    data: GlucoseData | None = None,
) -> GlucoseView:
    """Load the overview of `patient` (default: the first) on `ref`. Without dates the period is the
    patient's last `days` days with data; with only one date the other is `days` away."""
    if data is None or data.ref != ref or data.source != source:
        data = GlucoseData(ref=ref, source=source, settings=settings or get_settings())
    patients = data.patients()
    row = data.patient(patient)
    patient_id = str(row["patient_id"])
    start_d, end_d = _as_date(start, "start"), _as_date(end, "end")
    if end_d is None:
        end_d = start_d + timedelta(days=days - 1) if start_d else row["last_date"]
    if start_d is None:
        start_d = end_d - timedelta(days=days - 1)
    assert start_d is not None and end_d is not None
    try:
        today = data.today_so_far(patient_id)
    except CascadeError:
        today = None
    if start_d > end_d:
        raise VizError(f"the period starts ({start_d}) after it ends ({end_d}); pick a start before the end")
    notices: list[str] = []
    if today is not None and end_d >= today.day:
        # the day in progress is not part of any period: it is shown apart as "today so far"
        if start_d >= today.day:
            raise VizError(
                f"the period starts on {start_d}, not before today ({today.day}, still in progress: shown as "
                "'today so far'); pick a start before today"
            )
        end_d = today.day - timedelta(days=1)
        notices.append(
            f"the period ends on the last complete day, {end_d}; today ({today.day}) is shown as 'today so far'"
        )
    daily = data.daily_metrics(patient_id, start_d, end_d)
    try:
        summary = summarize_period(daily, patient_id, start_d, end_d)
    except NoGlucoseDataError as exc:
        empty = pd.DataFrame(columns=["minute_of_day", "p05", "p25", "p50", "p75", "p95"])
        return GlucoseView(data, patients, patient_id, start_d, end_d, daily, None, empty, "", error=str(exc),
                           notices=notices, today=today)  # fmt: skip
    agp, agp_source = data.agp_profile(patient_id, start_d, end_d)
    return GlucoseView(data, patients, patient_id, start_d, end_d, daily, summary, agp, agp_source,
                       notices=notices, today=today, sufficiency=period_sufficiency(data, summary))  # fmt: skip


def period_sufficiency(data: GlucoseData, summary: PeriodSummary) -> Sufficiency:
    """The period's data sufficiency: the period mart's `sufficient` row when the period is one of its
    windows (14/30/90 days, the whole history), else the same rule over the period's daily marts
    (days with data, readings present over the window)."""
    rows = data.period_metrics(summary.patient_id)
    match = rows[(rows["period_start"] == summary.start) & (rows["period_end"] == summary.end)]
    if len(match):
        row = match.iloc[0]
        return Sufficiency(int(row["days_with_data"]), float(row["active_percent"]), bool(row["sufficient"]),
                           f"marts.mrt_glucose_period_metrics ({row['period']})")  # fmt: skip
    return Sufficiency(
        summary.days_with_data,
        summary.pct_readings_present,
        is_sufficient(summary.days_with_data, summary.pct_readings_present),
        "daily marts",
    )


def dashboard_view(
    query: str | None = None,
    *,
    data: GlucoseData,
    ref: str = MAIN_BRANCH,
    patient: str | None = None,
    days: int = DEFAULT_DAYS,
    start: str | date | None = None,
    end: str | date | None = None,
    source: SourceChoice = "auto",
) -> GlucoseView:
    """The dashboard's view: `load_view` for what the page asks (`query`, default Voila's query
    string), and when a part of that cannot be shown — an unknown ref or patient, unreadable or
    reversed dates — the nearest view that can, with one notice per problem above the controls.
    `data` is the warmed-up reader of the notebook's default `ref`."""
    from workbench.errors import RefError

    defaults: dict[str, Any] = {"ref": ref, "patient": patient, "days": days, "start": start, "end": end}
    notices: list[str] = []
    try:
        chosen = query_params(query, source=source, **defaults)
    except VizError as exc:
        notices.append(str(exc))
        chosen = {**defaults, "source": source}
    if chosen["ref"] != data.ref:
        try:
            data = GlucoseData(ref=chosen["ref"], source=source, settings=data.settings)
            data.patients()
        except (RefError, NoGlucoseDataError) as exc:
            notices.append(f"{exc} — showing '{data.ref}' instead")
    chosen["ref"] = data.ref
    for attempt in range(3):
        try:
            view = load_view(**chosen, data=data)
        except UnknownPatientError as exc:
            notices.append(f"{exc} — showing the first patient instead")
            chosen["patient"] = None
        except VizError as exc:
            if attempt == 2 or (chosen["start"] is None and chosen["end"] is None):
                raise
            notices.append(f"{exc} — showing the last {chosen['days']} days instead")
            chosen["start"] = chosen["end"] = None
        else:
            view.notices = notices + view.notices
            return view
    raise VizError("; ".join(notices))  # pragma: no cover - three fallbacks cover every parameter
