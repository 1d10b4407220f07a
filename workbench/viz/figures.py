"""Plotly figures and HTML pieces of the glucose overview (offline: no CDN, no connected renderers).

Each figure carries `layout.meta = {"chart": <name>}` so tests and the browser check can find it.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from workbench.viz.summary import RANGES, TARGET_HIGH, TARGET_LOW, VERY_HIGH, VERY_LOW, Card, PeriodSummary

BAND_COLOR = "rgba(49, 163, 84, 0.12)"
MEDIAN_COLOR = "#08519c"
_FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"


def _layout(fig: go.Figure, chart: str, title: str, height: int = 360) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01},
        meta={"chart": chart},
        height=height,
        margin={"l": 60, "r": 20, "t": 50, "b": 45},
        template="plotly_white",
        font={"family": _FONT, "size": 12},
        legend={"orientation": "h", "y": -0.18},
    )
    return fig


def daily_trend_figure(daily: pd.DataFrame, rolling_days: int = 7) -> go.Figure:
    """Daily mean glucose with ±1 SD whiskers, a rolling mean over `rolling_days` calendar days and
    the 70–180 mg/dL target band."""
    frame = daily.sort_values("reading_date")
    dates = pd.to_datetime(frame["reading_date"])
    rolling = pd.Series(frame["mean_glucose"].to_numpy(), index=dates).rolling(f"{rolling_days}D", min_periods=1)
    fig = go.Figure()
    fig.add_hrect(y0=TARGET_LOW, y1=TARGET_HIGH, fillcolor=BAND_COLOR, line_width=0, layer="below")
    fig.add_trace(
        go.Scatter(
            x=dates,
            y=frame["mean_glucose"],
            mode="lines+markers",
            name="daily mean",
            line={"color": MEDIAN_COLOR, "width": 1.5},
            error_y={"type": "data", "array": frame["sd_glucose"].fillna(0), "thickness": 1, "width": 0},
            hovertemplate="%{x|%a %d %b}: %{y:.0f} mg/dL<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=dates,
            y=rolling.mean().to_numpy(),
            mode="lines",
            name=f"{rolling_days}-day rolling mean",
            line={"color": "#e6550d", "width": 2.5, "dash": "dash"},
            hovertemplate="%{y:.0f} mg/dL<extra></extra>",
        )
    )
    fig.update_yaxes(title_text="glucose (mg/dL)", rangemode="tozero")
    fig.update_xaxes(tickformat="%d %b")
    return _layout(fig, "daily_trend", f"Daily mean glucose (target {TARGET_LOW}–{TARGET_HIGH} mg/dL shaded)")


def time_in_ranges_figure(summary: PeriodSummary) -> go.Figure:
    """One stacked bar of the five consensus ranges (very low at the bottom); each range's share is
    in the legend (top to bottom as in the bar) and, when there is room, on the bar."""
    fig = go.Figure()
    for r in RANGES:
        value = float(getattr(summary, r.column))
        fig.add_trace(
            go.Bar(
                x=["period"],
                y=[value],
                name=f"{r.label}: {value:.1f} %",
                marker_color=r.color,
                text=[f"{value:.0f} %" if value >= 5 else ""],
                textposition="inside",
                hovertemplate=f"{r.label}: %{{y:.1f}} %<extra></extra>",
                width=0.5,
            )
        )
    fig.update_layout(barmode="stack")
    fig.update_yaxes(range=[0, 100], title_text="% of readings", ticksuffix=" %")
    fig.update_xaxes(showticklabels=False)
    _layout(fig, "time_in_ranges", "Time in ranges", height=420)
    fig.update_layout(legend={"traceorder": "reversed", "orientation": "v", "y": 1, "x": 1.02}, margin={"r": 10})
    return fig


def agp_figure(profile: pd.DataFrame, title: str = "Ambulatory glucose profile") -> go.Figure:
    """AGP: median with the 25–75 and 5–95 percentile bands over the 24-hour day, target lines at
    70 and 180 mg/dL."""
    frame = profile.sort_values("minute_of_day")
    hours = frame["minute_of_day"].to_numpy() / 60.0
    fig = go.Figure()

    def band(upper: str, lower: str, name: str, color: str) -> None:
        fig.add_trace(
            go.Scatter(
                x=hours,
                y=frame[upper],
                mode="lines",
                line={"width": 0},
                showlegend=False,
                hoverinfo="skip",
                line_shape="spline",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=hours,
                y=frame[lower],
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor=color,
                name=name,
                hoverinfo="skip",
                line_shape="spline",
            )
        )

    band("p95", "p05", "5–95 %", "rgba(8, 81, 156, 0.15)")
    band("p75", "p25", "25–75 %", "rgba(8, 81, 156, 0.35)")
    fig.add_trace(
        go.Scatter(
            x=hours,
            y=frame["p50"],
            mode="lines",
            name="median",
            line={"color": MEDIAN_COLOR, "width": 3},
            line_shape="spline",
            hovertemplate="%{x:.2f} h: median %{y:.0f} mg/dL<extra></extra>",
        )
    )
    for level in (TARGET_LOW, TARGET_HIGH):
        fig.add_hline(y=level, line={"color": "#31a354", "width": 1.5})
    fig.update_xaxes(
        range=[0, 24],
        tickvals=list(range(0, 25, 3)),
        ticktext=[f"{h:02d}:00" for h in range(0, 25, 3)],
        title_text="time of day (patient local)",
    )
    fig.update_yaxes(title_text="glucose (mg/dL)", range=[0, max(350.0, float(frame["p95"].max()) + 20)])
    return _layout(fig, "agp", title, height=420)


STATS_COLUMNS = {
    "reading_date": "date",
    "reading_count": "readings",
    "pct_readings_present": "data %",
    "mean_glucose": "mean",
    "sd_glucose": "SD",
    "cv_glucose": "CV %",
    "gmi": "GMI %",
    **{r.column: r.label.split("(")[1].rstrip(")") + " %" for r in RANGES},  # "<54 %", "54–69 %", ...
    "gri": "GRI",
}


def daily_stats_frame(daily: pd.DataFrame) -> pd.DataFrame:
    """The daily statistics table: one row per day, rounded, with readable column names."""
    frame = daily.sort_values("reading_date")[list(STATS_COLUMNS)].rename(columns=STATS_COLUMNS)
    rounded = frame.round({name: 1 for name in frame.columns if name not in ("date", "readings")})
    return rounded.reset_index(drop=True)


def daily_stats_figure(daily: pd.DataFrame) -> go.Figure:
    """The daily statistics table as a plotly table (for the static report)."""
    frame = daily_stats_frame(daily)
    fig = go.Figure(
        go.Table(
            header={"values": list(frame.columns), "fill_color": "#deebf7", "align": "center"},
            cells={"values": [frame[c].astype(str) for c in frame.columns], "align": "right"},
        )
    )
    return _layout(fig, "daily_stats", "Daily statistics", height=120 + 28 * len(frame))


def cards_html(cards: list[Card]) -> str:
    """Headline cards as a self-contained HTML block (green: target met, red: missed)."""
    parts = []
    for card in cards:
        color = "#6b7280" if card.met is None else ("#15803d" if card.met else "#b91c1c")
        status = "" if card.met is None else (" ✓" if card.met else " ✗")
        target = f"target {html.escape(card.target)}{status}" if card.target else "&nbsp;"
        parts.append(
            f'<div class="cascade-card" data-card="{card.key}" style="border:1px solid #d1d5db;'
            f"border-top:4px solid {color};border-radius:6px;padding:8px 12px;min-width:120px;"
            f'font-family:{_FONT}">'
            f'<div style="font-size:12px;color:#4b5563">{html.escape(card.label)}</div>'
            f'<div style="font-size:22px;font-weight:600">{html.escape(card.text)}</div>'
            f'<div style="font-size:11px;color:{color}">{target}</div></div>'
        )
    return f'<div class="cascade-cards" style="display:flex;flex-wrap:wrap;gap:8px">{"".join(parts)}</div>'


# ---- the one-page AGP report (fixed sizes for print; no toolbar, static) ---------------------------

#: Plotly config of every report figure: static (nothing to hover or click on paper), no toolbar.
PRINT_CONFIG = {"staticPlot": True, "displayModeBar": False}
AGP_SCALE_MGDL = (0.0, 350.0)  # the AGP report's fixed glucose axis
MARKER_LINES_MGDL = (float(VERY_LOW), float(VERY_HIGH))  # thin reference lines beside the target band


def _to_unit(values: Any, unit: str) -> Any:
    from workbench.metrics import MGDL_PER_MMOLL

    return values if unit == "mg/dL" else values / MGDL_PER_MMOLL  # type: ignore[operator]


def _print_layout(fig: go.Figure, chart: str, width: int, height: int, title: str | None = None) -> go.Figure:
    fig.update_layout(
        meta={"chart": chart},
        width=width,
        height=height,
        autosize=False,
        margin={"l": 44, "r": 8, "t": 26 if title else 6, "b": 26},
        template="plotly_white",
        font={"family": _FONT, "size": 10},
        showlegend=False,
        title={"text": title, "x": 0.0, "xanchor": "left", "font": {"size": 12}} if title else None,
    )
    return fig


def report_tir_figure(summary: PeriodSummary, width: int = 330, height: int = 235) -> go.Figure:
    """The time-in-ranges bar of the AGP report: five stacked bands, each labelled beside the bar
    with its range and share (labels never inside the bar, never overlapping: spread apart)."""
    fig = go.Figure()
    values = [float(getattr(summary, r.column)) for r in RANGES]
    for r, value in zip(RANGES, values, strict=True):
        fig.add_trace(go.Bar(x=[0], y=[value], marker_color=r.color, width=0.6, hoverinfo="skip"))
    # label positions: the middle of each band, pushed apart to at least 13 % from each other
    centers, bottom = [], 0.0
    for value in values:
        centers.append(bottom + value / 2)
        bottom += value
    # forward: at least `gap` apart from 2 % up; backward: at most 98 % at the top (always fits)
    gap, n = 12.0, len(centers)
    positions: list[float] = []
    for i, center in enumerate(centers):
        positions.append(max(center, 2.0 + i * gap, positions[-1] + gap if positions else 0.0))
    for i in range(n - 1, -1, -1):
        positions[i] = min(positions[i], 98.0 - (n - 1 - i) * gap, positions[i + 1] - gap if i < n - 1 else 98.0)
    for r, value, y, center in zip(RANGES, values, positions, centers, strict=True):
        fig.add_annotation(
            x=0.42, y=y, xref="x", yref="y", text=f"<b>{value:.0f} %</b>  {html.escape(r.label)}",
            showarrow=False, xanchor="left", font={"size": 10, "color": "#111827"},
        )  # fmt: skip
        fig.add_shape(type="line", x0=0.3, x1=0.4, y0=center, y1=y, line={"color": "#9ca3af", "width": 0.8})
    fig.update_layout(barmode="stack", bargap=0)
    fig.update_xaxes(range=[-0.35, 2.2], visible=False)
    fig.update_yaxes(range=[0, 100], visible=False)
    return _print_layout(fig, "time_in_ranges", width, height, "Time in ranges")


def report_agp_figure(profile: pd.DataFrame, unit: str = "mg/dL", width: int = 990, height: int = 235) -> go.Figure:
    """AGP on the fixed 0–350 mg/dL scale: 5–95 and 25–75 % bands and the median, smoothed as the
    AGP report draws them (the mart keeps the unsmoothed values), the 70–180 target band and thin
    lines at 54 and 250 mg/dL."""
    frame = profile.sort_values("minute_of_day")
    hours = frame["minute_of_day"].to_numpy() / 60.0

    def smooth(column: str) -> Any:
        # a centred moving average over 7 points (35 minutes), circular over midnight
        values = frame[column].astype(float)
        wrapped = pd.concat([values.iloc[-3:], values, values.iloc[:3]])
        return _to_unit(wrapped.rolling(7, center=True, min_periods=1).mean().iloc[3:-3].to_numpy(), unit)

    fig = go.Figure()
    low, high = _to_unit(float(TARGET_LOW), unit), _to_unit(float(TARGET_HIGH), unit)
    fig.add_hrect(y0=low, y1=high, fillcolor=BAND_COLOR, line_width=0, layer="below")
    for level in (TARGET_LOW, TARGET_HIGH):
        fig.add_hline(y=_to_unit(float(level), unit), line={"color": "#31a354", "width": 1.2})
    for marker in MARKER_LINES_MGDL:
        fig.add_hline(y=_to_unit(marker, unit), line={"color": "#9ca3af", "width": 0.8, "dash": "dot"})
    for upper, lower, color in (("p95", "p05", "rgba(8, 81, 156, 0.15)"), ("p75", "p25", "rgba(8, 81, 156, 0.38)")):
        fig.add_trace(go.Scatter(x=hours, y=smooth(upper), mode="lines", line={"width": 0.6, "color": color}))
        fig.add_trace(
            go.Scatter(x=hours, y=smooth(lower), mode="lines", line={"width": 0.6, "color": color}, fill="tonexty",
                       fillcolor=color)
        )  # fmt: skip
    fig.add_trace(go.Scatter(x=hours, y=smooth("p50"), mode="lines", line={"color": MEDIAN_COLOR, "width": 2.5}))
    fig.update_xaxes(
        range=[0, 24], tickvals=list(range(0, 25, 3)), ticktext=[f"{h % 24:02d}:00" for h in range(0, 25, 3)]
    )
    scale = [_to_unit(v, unit) for v in AGP_SCALE_MGDL]
    ticks = [_to_unit(float(v), unit) for v in (0, VERY_LOW, TARGET_LOW, TARGET_HIGH, VERY_HIGH, AGP_SCALE_MGDL[1])]
    fig.update_yaxes(range=scale, tickvals=ticks, ticktext=[f"{t:.0f}" if unit == "mg/dL" else f"{t:.1f}" for t in ticks],
                     title_text=unit)  # fmt: skip
    return _print_layout(fig, "agp", width, height, "Ambulatory glucose profile (AGP): median, 25–75 % and 5–95 %")


CARBS_COLOR = "#e6550d"
BOLUS_COLOR = "#2563eb"


def report_daily_profiles_figure(
    readings: pd.DataFrame,
    days: Sequence[object],
    treatments: pd.DataFrame | None = None,
    unit: str = "mg/dL",
    width: int = 990,
    height: int = 200,
) -> go.Figure:
    """One small chart per day (rows of seven): glucose over the local day on the fixed scale with
    the 70–180 band; carbohydrate (orange triangle, trace "carbs") and bolus (blue tick, trace
    "bolus") markers at the foot, from `GlucoseData.treatments` (its `is_carbs`/`is_bolus` flags)."""
    from plotly.subplots import make_subplots

    cols = 7
    rows = max(1, (len(days) + cols - 1) // cols)
    titles = [f"{pd.Timestamp(d):%a %d %b}" for d in days]
    fig = make_subplots(rows=rows, cols=cols, shared_yaxes=True, horizontal_spacing=0.006,
                        vertical_spacing=min(0.14, 0.3 / rows), subplot_titles=titles)  # fmt: skip
    local = pd.to_datetime(readings["reading_ts_local"]) if len(readings) else pd.Series([], dtype="datetime64[ns]")
    dates = pd.to_datetime(readings["reading_date"]).dt.date if len(readings) else pd.Series([], dtype=object)
    events = treatments if treatments is not None and len(treatments) else None
    t_local = pd.to_datetime(events["treatment_ts_local"]) if events is not None else None
    low, high = _to_unit(float(TARGET_LOW), unit), _to_unit(float(TARGET_HIGH), unit)
    top = _to_unit(AGP_SCALE_MGDL[1], unit)
    for i, day in enumerate(days):
        row, col = i // cols + 1, i % cols + 1
        mine = dates == day
        hours = (local[mine] - pd.Timestamp(day)).dt.total_seconds() / 3600.0
        fig.add_hrect(y0=low, y1=high, fillcolor=BAND_COLOR, line_width=0, layer="below", row=row, col=col)
        values = _to_unit(readings.loc[mine, "glucose_value"].astype(float), unit)
        fig.add_trace(
            go.Scatter(x=hours, y=values, mode="lines", name="glucose", line={"color": MEDIAN_COLOR, "width": 1},
                       hovertemplate=f"%{{y:.0f}} {unit}<extra></extra>"),
            row=row, col=col,
        )  # fmt: skip
        if events is not None and t_local is not None:
            on_day = (t_local.dt.date == day).to_numpy()
            th = (t_local[on_day] - pd.Timestamp(day)).dt.total_seconds() / 3600.0
            mine_events = events[on_day]
            carbs, bolus = mine_events["is_carbs"].to_numpy(bool), mine_events["is_bolus"].to_numpy(bool)
            grams = mine_events["carbs_grams"].to_numpy(float)[carbs]
            units = mine_events["insulin_units"].to_numpy(float)[bolus]
            fig.add_trace(go.Scatter(x=th[carbs], y=[top * 0.06] * int(carbs.sum()), mode="markers", name="carbs",
                                     customdata=grams, hovertemplate="carbs %{customdata:.0f} g<extra></extra>",
                                     marker={"symbol": "triangle-up", "size": 5, "color": CARBS_COLOR}),
                          row=row, col=col)  # fmt: skip
            fig.add_trace(go.Scatter(x=th[bolus], y=[top * 0.015] * int(bolus.sum()), mode="markers", name="bolus",
                                     customdata=units, hovertemplate="bolus %{customdata:.1f} U<extra></extra>",
                                     marker={"symbol": "line-ns-open", "size": 7, "color": BOLUS_COLOR}),
                          row=row, col=col)  # fmt: skip
        fig.update_xaxes(range=[0, 24], tickvals=[0, 12, 24], ticktext=["", "12", ""], row=row, col=col)
    labels = [f"{v:.0f}" if unit == "mg/dL" else f"{v:.1f}" for v in (low, high)]
    fig.update_yaxes(range=[0, top], tickvals=[low, high], ticktext=labels)
    fig.update_annotations(font={"size": 9})
    _print_layout(fig, "daily_profiles", width, height)
    fig.update_layout(margin={"t": 16})
    return fig


def daily_profiles_figure(readings: pd.DataFrame, days: Sequence[object], treatments: pd.DataFrame | None = None,
                          width: int = 1150) -> go.Figure:  # fmt: skip
    """The dashboard's daily glucose profiles: the report's small charts (one per day, seven a row)
    with a title naming the markers, as wide as the page and with hover values."""
    rows = max(1, (len(days) + 6) // 7)
    height = 90 + 150 * rows
    fig = report_daily_profiles_figure(readings, days, treatments, width=width, height=height)
    title = "Daily glucose profiles (midnight to midnight; ▲ carbohydrates, | bolus)"
    fig.update_layout(title={"text": title, "x": 0.01, "font": {"size": 13}}, margin={"t": 60}, font={"size": 11},
                      width=None, autosize=True)  # fmt: skip
    fig.update_annotations(yshift=2)
    return fig


def today_html(today: Any) -> str:
    """The "today so far" block: the day in progress (not part of the period above): readings so
    far, mean, time in range and the last reading's time. `today` is a `data.TodaySoFar` or None."""
    if today is None:
        return ""
    day = f"{today.day:%a %d %b %Y}"
    parts: list[str] = []
    if today.reading_count:
        parts.append(f'<span data-today="readings"><b>{today.reading_count}</b> readings so far</span>')
        parts.append(f'<span data-today="mean">mean <b>{today.mean_glucose:.0f} mg/dL</b></span>')
        parts.append(f'<span data-today="tir">TIR {TARGET_LOW}–{TARGET_HIGH} <b>{today.pct_in_range:.0f} %</b></span>')
        parts.append(f'<span data-today="tbr">below {TARGET_LOW} <b>{today.pct_below_70:.0f} %</b></span>')
        parts.append(f'<span data-today="tar">above {TARGET_HIGH} <b>{today.pct_above_180:.0f} %</b></span>')
        if today.last_reading is not None:
            parts.append(f'<span data-today="last">last reading <b>{today.last_reading:%H:%M}</b></span>')
    else:
        parts.append('<span data-today="readings"><b>no readings</b> yet today</span>')
        if today.latest_reading is not None:
            parts.append(f'<span data-today="last">last reading <b>{today.latest_reading:%a %d %b %H:%M}</b></span>')
    note = "not part of the period, the AGP or the trend until the day is complete"
    return (
        f'<div id="cascade-today" style="border:1px dashed #9ca3af;border-radius:6px;padding:6px 12px;'
        f'margin:8px 0;font-family:{_FONT};font-size:13px">'
        f"<b>Today so far</b> · {html.escape(day)} · {' · '.join(parts)}"
        f'<div style="font-size:11px;color:#6b7280">{html.escape(note)}</div></div>'
    )


def report_treatments_figure(daily: pd.DataFrame, width: int = 990, height: int = 300) -> go.Figure:
    """Daily insulin (bolus and basal stacked) and carbohydrates (right axis) for the treatments page."""
    from plotly.subplots import make_subplots

    frame = daily.sort_values("treatment_date")
    x = [f"{pd.Timestamp(d):%d %b}" for d in frame["treatment_date"]]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=x, y=frame["bolus_units"], name="bolus", marker_color="#2563eb"))
    fig.add_trace(go.Bar(x=x, y=frame["basal_units"], name="basal", marker_color="#93c5fd"))
    fig.add_trace(go.Scatter(x=x, y=frame["carbs_grams"], name="carbs (g)", mode="lines+markers",
                             line={"color": "#e6550d"}), secondary_y=True)  # fmt: skip
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text="insulin (U)", secondary_y=False, rangemode="tozero")
    fig.update_yaxes(title_text="carbs (g)", secondary_y=True, rangemode="tozero", showgrid=False)
    _print_layout(fig, "treatments", width, height, "Daily insulin and carbohydrates")
    fig.update_layout(showlegend=True, legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"})
    return fig
