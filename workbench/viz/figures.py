"""Plotly figures and HTML pieces of the glucose overview (offline: no CDN, no connected renderers).

Each figure carries `layout.meta = {"chart": <name>}` so tests and the browser check can find it.
"""

from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go

from workbench.viz.summary import RANGES, TARGET_HIGH, TARGET_LOW, Card, PeriodSummary

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
    return _layout(fig, "daily_trend", "Daily mean glucose (target 70–180 mg/dL shaded)")


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
    "pct_very_low": "<54 %",
    "pct_low": "54–69 %",
    "pct_in_range": "70–180 %",
    "pct_high": "181–250 %",
    "pct_very_high": ">250 %",
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
