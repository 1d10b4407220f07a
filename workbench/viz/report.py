"""Static AGP reports: one self-contained HTML file per patient (plotly.js inlined, no CDN), and a
PDF printed from it by headless Chromium when Chromium is installed.

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
from datetime import UTC, datetime
from pathlib import Path

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from workbench.settings import Settings, get_settings
from workbench.viz.data import GlucoseData, SourceChoice
from workbench.viz.errors import PdfExportError, VizError
from workbench.viz.view import DEFAULT_DAYS, GlucoseView, load_view

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_PDF_TIMEOUT_S = 120


def _figure_div(fig: go.Figure) -> str:
    return str(fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False}))


def report_html(view: GlucoseView) -> str:
    """The whole report page for one view, with plotly.js inlined (works offline)."""
    if view.summary is None:
        raise VizError(view.error or f"no data for {view.patient_id}")
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    stats = view.stats_frame().to_html(index=False, border=0, classes="stats", na_rep="–")
    title = f"AGP report · {view.patient_id} · {view.start} – {view.end}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 24px; color: #111827; }}
.row {{ display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }}
.row > div.plot {{ flex: 1 1 480px; }}
table.stats {{ border-collapse: collapse; font-size: 12px; }}
table.stats th, table.stats td {{ padding: 3px 8px; border-bottom: 1px solid #e5e7eb; text-align: right; }}
footer {{ margin-top: 16px; font-size: 11px; color: #6b7280; }}
@media print {{ body {{ margin: 8mm; }} .plot {{ break-inside: avoid; }} }}
</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
{view.header_html()}
<h3>Glucose statistics and targets</h3>
{view.cards_html()}
<div class="row">
<div class="plot" style="flex:0 0 300px">{_figure_div(view.time_in_ranges_figure())}</div>
<div class="plot">{_figure_div(view.agp_figure())}</div>
</div>
<div class="plot">{_figure_div(view.trend_figure())}</div>
<h3>Daily statistics</h3>
{stats}
<footer>Targets: International Consensus on Time in Range (Battelino et al., Diabetes Care 2019).
GMI = 3.31 + 0.02392·mean; GRI (Klonoff 2023). Percentages are shares of readings.
Generated {generated} by Cascade.</footer>
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
    ref: str = "main",
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
    target.write_text(report_html(view), encoding="utf-8")
    written = [target]
    if pdf:
        written.append(html_to_pdf(target, target.with_suffix(".pdf")))
    return written


def export_reports(
    out_dir: str | Path,
    ref: str = "main",
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
