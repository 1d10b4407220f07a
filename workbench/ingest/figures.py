"""Small read-backs of what ingestion landed, for the ingest notebook."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go


def recent_readings(lakehouse: Any, hours: float = 24.0) -> pd.DataFrame:
    """Sensor readings of the last `hours` before each patient's latest reading (UTC timestamps)."""
    if "raw.glucose_entries" not in lakehouse.tables():
        return pd.DataFrame(columns=["patient_id", "reading_ts", "sgv"])
    window_ms = int(hours * 3_600_000)
    frame = lakehouse.sql(
        f"""
        with latest as (
            select patient_id, max(date) as last_ms from raw.glucose_entries where type = 'sgv' group by 1
        )
        select e.patient_id, e.date, e.sgv
        from raw.glucose_entries e join latest l on l.patient_id = e.patient_id
        where e.type = 'sgv' and e.date > l.last_ms - {window_ms}
        order by e.patient_id, e.date
        """
    )  # engine-neutral SQL (DuckDB and Trino); epoch ms -> UTC timestamps here
    frame.insert(1, "reading_ts", pd.to_datetime(frame.pop("date"), unit="ms", utc=True))
    return frame


def readings_figure(frame: pd.DataFrame, title: str = "Latest readings per patient") -> go.Figure:
    """A line per patient with the 70-180 mg/dL target range shaded."""
    fig = px.line(frame, x="reading_ts", y="sgv", color="patient_id", title=title)
    fig.add_hrect(y0=70, y1=180, fillcolor="green", opacity=0.08, line_width=0)
    fig.update_layout(xaxis_title="time (UTC)", yaxis_title="sgv (mg/dL)", height=360, margin={"t": 50})
    return fig
