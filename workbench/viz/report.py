"""The AGP report clinicians know (International Diabetes Center layout): one landscape page —
glucose statistics and targets, the time-in-ranges bar, the AGP on the fixed 0–350 mg/dL scale and
one small profile per day — plus a treatments page when there are treatments. A self-contained HTML
file per patient (plotly.js inlined, no CDN, static figures: print-clean), and a PDF printed from it
by headless Chromium when Chromium is installed. Paper (A4/Letter) and unit (mg/dL, mmol/L) come
from the settings CASCADE_REPORT_PAPER and CASCADE_GLUCOSE_UNIT.

```python
from workbench.viz.report import export_report, export_reports
export_report("p001", "reports/")              # -> reports/agp_p001_2026-11-15_2026-11-28.html
export_reports("runs/123/reports", ref="main")  # one per patient (what the pipeline calls)
```
"""

from __future__ import annotations

import html
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from workbench.lake.api import MAIN_BRANCH
from workbench.metrics import SUFFICIENT_ACTIVE_PERCENT, SUFFICIENT_DAYS
from workbench.settings import Settings, get_settings
from workbench.viz import figures, summary
from workbench.viz.data import GlucoseData, SourceChoice
from workbench.viz.errors import PdfExportError, VizError
from workbench.viz.summary import gri_zone
from workbench.viz.view import DEFAULT_DAYS, GlucoseView, load_view

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_PDF_TIMEOUT_S = 120


def _figure_div(fig: go.Figure) -> str:
    return str(fig.to_html(full_html=False, include_plotlyjs=False, config=figures.PRINT_CONFIG))


#: Printable area (CSS px at 96 dpi) of a landscape page with 8 mm margins, per paper.
PAGES = {"A4": ("A4 landscape", 1060), "Letter": ("letter landscape", 995)}


@dataclass(frozen=True)
class ReportData:
    """Everything one AGP report shows."""

    view: GlucoseView
    readings: pd.DataFrame
    treatments: pd.DataFrame  # treatment events of the period (local times), may be empty
    treatments_daily: pd.DataFrame  # marts.mrt_treatments_daily rows of the period, may be empty
    unit: str
    paper: str


def report_data(view: GlucoseView, settings: Settings) -> ReportData:
    """Read the readings and treatments of the view's period (the lake of the view's ref)."""
    data = view.data
    readings = data.readings(view.patient_id, view.start, view.end)
    events = data.treatments(view.patient_id, view.start, view.end)
    daily = data.treatments_daily(view.patient_id, view.start, view.end)
    return ReportData(view, readings, events, daily, settings.glucose_unit, settings.report_paper)


def _stats_html(view: GlucoseView, unit: str) -> str:
    s = view.summary
    assert s is not None
    mean = figures._to_unit(s.mean_glucose, unit)
    enough = view.sufficiency
    assert enough is not None
    vlo, lo, hi, vhi = summary.VERY_LOW, summary.TARGET_LOW, summary.TARGET_HIGH, summary.VERY_HIGH
    cards = {card.key: card for card in view.cards}  # the consensus targets, as the dashboard's cards

    def row(label: str, value: str, target: str = "", met: bool | None = None) -> str:
        mark = "" if met is None else ('<span class="ok">✓</span>' if met else '<span class="miss">✗</span>')
        return f"<tr><th>{label}</th><td>{value}</td><td class='target'>{target} {mark}</td></tr>"

    rows = [
        row("Period", f"{view.start:%d %b %Y} – {view.end:%d %b %Y} ({view.days} days)"),
        row(
            "Days with data",
            f"{enough.days_with_data} of {view.days}",
            f"≥ {SUFFICIENT_DAYS}",
            enough.days_with_data >= SUFFICIENT_DAYS,
        ),
        row(
            "CGM active",
            f"{enough.active_percent:.1f} %",
            f"≥ {SUFFICIENT_ACTIVE_PERCENT:.0f} %",
            enough.active_percent >= SUFFICIENT_ACTIVE_PERCENT,
        ),
        row("Mean glucose", f"{mean:.1f} {unit}" if unit != "mg/dL" else f"{mean:.0f} {unit}"),
        row("GMI", f"{s.gmi:.1f} %"),
        *(
            row(label, f"{card.value:.1f} %", card.target or "", card.met)
            for label, card in (
                ("Glucose variability (CV)", cards["cv"]),
                (f"Time in range {lo}–{hi}", cards["tir"]),
                (f"Below {lo} (incl. < {vlo})", cards["tbr70"]),
                (f"Below {vlo}", cards["tbr54"]),
                (f"Above {hi} (incl. > {vhi})", cards["tar180"]),
                (f"Above {vhi}", cards["tar250"]),
            )
        ),
        row("GRI", f"{s.gri:.0f} (zone {gri_zone(s.gri)})"),
    ]
    warning = (
        ""
        if enough.sufficient
        else '<p class="warning" data-part="insufficient">Not enough data for a reliable AGP: the consensus '
        f"asks for ≥ {SUFFICIENT_DAYS} days with ≥ {SUFFICIENT_ACTIVE_PERCENT:.0f} % of CGM data.</p>"
    )
    return f'<table class="stats" data-part="stats">{"".join(rows)}</table>{warning}'


def report_html(view: GlucoseView, settings: Settings | None = None, data: ReportData | None = None) -> str:
    """The AGP report of one view: a landscape page (statistics and targets, time-in-ranges bar,
    AGP, 14 daily profiles) and, when there are treatments, a second page with daily insulin and
    carbohydrates. plotly.js is inlined (works offline); figures are static (print-clean)."""
    if view.summary is None:
        raise VizError(view.error or f"no data for {view.patient_id}")
    settings = settings or get_settings()
    data = data or report_data(view, settings)
    unit = data.unit
    page_size, width = PAGES[data.paper]
    patient = view.patients.set_index("patient_id").loc[view.patient_id]
    name = patient["display_name"]
    today = f" · {view.today.day:%d %b} (today so far) not included" if view.today is not None else ""
    title = f"AGP report · {name} ({view.patient_id}) · {view.start} – {view.end}"
    days = view.profile_days  # the last 14 days of the period, one small chart each
    tir = figures.report_tir_figure(view.summary, width=330, height=228)
    agp = figures.report_agp_figure(view.agp, unit, width=width, height=222)
    profiles = figures.report_daily_profiles_figure(data.readings, days, data.treatments, unit, width=width, height=196)
    second = ""
    if len(data.treatments_daily):
        table = data.treatments_daily[
            ["treatment_date", "bolus_units", "basal_units", "total_insulin_units", "carbs_grams", "bolus_count"]
        ].copy()
        table["treatment_date"] = pd.to_datetime(table["treatment_date"]).dt.strftime("%a %d %b")
        table["bolus_count"] = table["bolus_count"].astype("int64")
        table.columns = ["day", "bolus (U)", "basal (U)", "total (U)", "carbs (g)", "boluses"]
        treatments_table = table.round(1).to_html(index=False, border=0, classes="treat")
        chart = _figure_div(figures.report_treatments_figure(data.treatments_daily, width=width, height=300))
        second = f"""<section class="page" data-part="treatments-page">
<header><h1>Treatments · {html.escape(str(name))} ({html.escape(view.patient_id)})</h1>
<span>{view.start:%d %b %Y} – {view.end:%d %b %Y}</span></header>
<div data-part="treatments-chart">{chart}</div>
<div data-part="treatments-table">{treatments_table}</div>
</section>"""
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
@page {{ size: {page_size}; margin: 8mm; }}
* {{ box-sizing: border-box; }}
body {{ font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 0; color: #111827; font-size: 11px; }}
.page {{ width: {width}px; height: 728px; overflow: hidden; break-inside: avoid; }}
.page + .page {{ break-before: page; page-break-before: always; }}
header {{ display: flex; justify-content: space-between; align-items: baseline; border-bottom: 2px solid #08519c;
  margin-bottom: 4px; white-space: nowrap; }}
h1 {{ font-size: 15px; margin: 0; }}
h2 {{ font-size: 12px; margin: 2px 0; }}
.top {{ display: flex; gap: 16px; align-items: flex-start; height: 232px; }}
table.stats {{ border-collapse: collapse; white-space: nowrap; }}
table.stats th {{ text-align: left; font-weight: 500; padding: 1px 10px 1px 0; color: #374151; }}
table.stats td {{ text-align: right; padding: 1px 8px; font-weight: 600; }}
table.stats td.target {{ text-align: left; font-weight: 400; color: #6b7280; }}
.ok {{ color: #15803d; }} .miss {{ color: #b91c1c; }}
.warning {{ color: #b91c1c; font-weight: 600; margin: 4px 0; white-space: normal; width: 560px; }}
table.treat {{ border-collapse: collapse; white-space: nowrap; margin-top: 6px; }}
table.treat th, table.treat td {{ padding: 1px 10px; border-bottom: 1px solid #e5e7eb; text-align: right; }}
footer {{ font-size: 9px; color: #6b7280; }}
.js-plotly-plot, .plot-container {{ break-inside: avoid; }}
</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<section class="page" data-part="agp-page">
<header><h1>AGP report · {html.escape(str(name))} ({html.escape(view.patient_id)})</h1>
<span>{view.start:%a %d %b %Y} – {view.end:%a %d %b %Y} · {view.days} days{today} · glucose in {html.escape(unit)}</span></header>
<div class="top">
<div><h2>Glucose statistics and targets</h2>{_stats_html(view, unit)}</div>
<div data-part="tir">{_figure_div(tir)}</div>
</div>
<div data-part="agp">{_figure_div(agp)}</div>
<h2>Daily glucose profiles <span style="font-weight:400;color:#6b7280">(each midnight to midnight;
▲ carbohydrates, | bolus)</span></h2>
<div data-part="daily-profiles">{_figure_div(profiles)}</div>
<footer>Targets: International Consensus on Time in Range (Battelino 2019, 2023). GMI (Bergenstal 2018), GRI
(Klonoff 2023). AGP: 5-minute interpolated grid, 5/25/50/75/95th percentiles. Generated {generated} by Cascade
(ref {html.escape(view.ref)}).</footer>
</section>
{second}
</body></html>
"""


#: Headless Chromium on a machine without outside network (no background requests, no sandbox as root).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable on PATH, or None."""
    for name in CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def html_to_pdf(source: Path, target: Path, chromium: str | None = None) -> Path:
    """Print an HTML file to PDF with headless Chromium (a fresh profile, no network services)."""
    browser = chromium or find_chromium()
    if browser is None:
        raise PdfExportError("Chromium is not installed (Debian: apt-get install chromium); HTML reports still work")
    with tempfile.TemporaryDirectory(prefix="cascade-chromium-") as profile:
        args = [
            browser,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            "--virtual-time-budget=10000",
            f"--print-to-pdf={target}",
            source.resolve().as_uri(),
        ]
        try:
            proc = subprocess.run(args, capture_output=True, text=True, timeout=_PDF_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise PdfExportError(f"Chromium did not print {source.name} within {_PDF_TIMEOUT_S}s") from None
    if proc.returncode != 0 or not target.is_file() or target.stat().st_size == 0:
        tail = (proc.stderr or "").strip().splitlines()[-1:] or ["no output"]
        raise PdfExportError(f"Chromium could not print {source.name} to PDF: {tail[0]}")
    return target


def export_report(
    patient: str,
    out_dir: str | Path,
    *,
    ref: str = MAIN_BRANCH,
    days: int = DEFAULT_DAYS,
    end: str | None = None,
    pdf: bool = False,
    source: SourceChoice = "auto",
    settings: Settings | None = None,
    data: GlucoseData | None = None,
) -> list[Path]:
    """Write the AGP report of one patient (last `days` days with data, or ending on `end`) as HTML,
    and as PDF too when `pdf`; returns the files written."""
    view = load_view(ref=ref, patient=patient, days=days, end=end, source=source, settings=settings, data=data)
    if view.summary is None:
        raise VizError(view.error or f"no data for {patient}")
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"agp_{view.patient_id}_{view.start}_{view.end}.html"
    target.write_text(report_html(view, settings or view.data.settings), encoding="utf-8")
    written = [target]
    if pdf:
        written.append(html_to_pdf(target, target.with_suffix(".pdf")))
    return written


def export_reports(
    out_dir: str | Path,
    ref: str = MAIN_BRANCH,
    days: int = DEFAULT_DAYS,
    *,
    pdf: bool | None = None,
    settings: Settings | None = None,
) -> list[Path]:
    """One report per patient in `out_dir` (the pipeline's report folder). PDFs are added when
    Chromium is installed (`pdf=None`), always (`True`, fails without Chromium) or never (`False`)."""
    data = GlucoseData(ref=ref, settings=settings or get_settings())
    want_pdf = find_chromium() is not None if pdf is None else pdf
    written: list[Path] = []
    for patient in data.patients()["patient_id"]:
        written += export_report(str(patient), out_dir, ref=ref, days=days, pdf=want_pdf, data=data)
    return written
