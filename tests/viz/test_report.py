"""Static AGP reports: self-contained HTML (plotly.js inlined, no CDN), PDF through Chromium, CLI."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from workbench.settings import Settings
from workbench.viz.report import export_report, export_reports, find_chromium


def find_pdftoppm() -> str | None:
    return shutil.which("pdftoppm")


def test_report_is_one_self_contained_html_file(demo_settings: Settings, tmp_path: Path) -> None:
    [path] = export_report("p002", tmp_path / "out", days=7, settings=demo_settings)
    assert re.fullmatch(r"agp_p002_\d{4}-\d\d-\d\d_\d{4}-\d\d-\d\d\.html", path.name)
    page = path.read_text(encoding="utf-8")
    before, bundle, after = page.partition(get_plotlyjs())
    assert bundle and len(bundle) > 3_000_000  # plotly.js itself is inlined, once
    rest = before + after
    assert get_plotlyjs() not in rest
    # no script or stylesheet from elsewhere, no CDN address (figure data is base64: match URLs, not letters)
    assert not re.search(r"<script[^>]*\bsrc=", rest) and "<link" not in rest
    assert not re.search(r"https?://[^\s\"'<>]*cdn", rest.lower())
    for chart in ("agp", "time_in_ranges", "daily_profiles"):
        assert f'"meta":{{"chart":"{chart}"}}' in page
    for part in ("stats", "tir", "agp", "daily-profiles", "treatments-page"):
        assert f'data-part="{part}"' in page, part
    assert "Demo patient 2 (p002)" in page and "(7 days)" in page
    # every figure static, without the plotly toolbar (nothing printed over titles): 4 with treatments
    assert page.count('"staticPlot": true') == page.count('"displayModeBar": false') == 4
    assert "size: A4 landscape" in page and "glucose in mg/dL" in page
    assert 'data-part="insufficient"' in page  # 7 days are not enough by consensus


def test_daily_profiles_carry_a_marker_per_bolus_and_carb_entry(demo_settings: Settings) -> None:
    from workbench.viz import figures
    from workbench.viz.report import report_data, report_html
    from workbench.viz.view import load_view

    view = load_view(patient="p001", days=30, settings=demo_settings)
    data = report_data(view, demo_settings)
    page = report_html(view, demo_settings, data)
    assert '"name":"bolus"' in page and '"name":"carbs"' in page
    days = view.profile_days
    assert len(days) == min(14, view.days) and days[-1] == view.end
    fig = figures.report_daily_profiles_figure(data.readings, days, data.treatments)
    shown = data.treatments_daily[pd.to_datetime(data.treatments_daily["treatment_date"]).dt.date >= days[0]]
    boluses = sum(len(t.x) for t in fig.data if t.name == "bolus")
    carbs = sum(sum(t.customdata) for t in fig.data if t.name == "carbs" and t.customdata is not None)
    assert boluses == int(shown["bolus_count"].sum()) > 0  # the treatments mart's count of boluses
    assert carbs == pytest.approx(float(shown["carbs_grams"].sum())) and carbs > 0


def test_export_reports_writes_one_per_patient(demo_settings: Settings, tmp_path: Path) -> None:
    paths = export_reports(tmp_path, ref="main", pdf=False, settings=demo_settings)
    assert sorted(p.name.split("_")[1] for p in paths) == ["p001", "p002"]
    assert all(p.suffix == ".html" and p.stat().st_size > 0 for p in paths)


@pytest.mark.skipif(find_chromium() is None, reason="needs Chromium (Debian package chromium)")
@pytest.mark.parametrize(("paper", "unit"), [("A4", "mg/dL"), ("Letter", "mmol/L")])
def test_pdf_is_one_landscape_page_plus_treatments(
    demo_settings: Settings, tmp_path: Path, paper: str, unit: str
) -> None:
    from pypdf import PdfReader

    settings = demo_settings.model_copy(update={"report_paper": paper, "glucose_unit": unit})
    paths = export_report("p001", tmp_path, pdf=True, settings=settings)
    assert [p.suffix for p in paths] == [".html", ".pdf"]
    reader = PdfReader(paths[1])
    assert len(reader.pages) == 2  # the AGP page and the treatments page (the demo has treatments)
    for page in reader.pages:
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        assert width > height  # landscape
        expected = (842, 595) if paper == "A4" else (792, 612)
        assert (round(width), round(height)) == pytest.approx(expected, abs=2)
    # NFKC: Chromium's PDF text uses ligatures (ﬁ)
    first, second = (unicodedata.normalize("NFKC", page.extract_text()) for page in reader.pages)
    for part in ("Glucose statistics and targets", "Time in ranges", "Ambulatory glucose profile",
                 "Daily glucose profiles", f"glucose in {unit}", "Time in range 70–180", "Targets:"):  # fmt: skip
        assert part in first, part
    assert "Treatments ·" not in first  # the treatments page starts on its own page
    assert "Treatments" in second and "bolus (U)" in second and "carbs (g)" in second
    if find_pdftoppm() is not None:  # keep a picture of the first page for people to look at
        artifacts = Path(__file__).resolve().parents[2] / "test-artifacts"
        artifacts.mkdir(exist_ok=True)
        subprocess.run([find_pdftoppm(), "-r", "80", "-png", "-f", "1", "-l", "1", str(paths[1]),
                        str(artifacts / f"agp-report-{paper}")], check=True, timeout=60)  # fmt: skip


def test_no_treatments_page_without_treatments(demo_settings: Settings) -> None:
    import pandas as pd

    from workbench.viz.report import report_data, report_html
    from workbench.viz.view import load_view

    view = load_view(patient="p001", settings=demo_settings)
    data = report_data(view, demo_settings)
    assert len(data.treatments_daily) > 0
    empty = data.__class__(**{**data.__dict__, "treatments_daily": pd.DataFrame(), "treatments": pd.DataFrame()})
    page = report_html(view, demo_settings, empty)
    assert 'data-part="treatments-page"' not in page and 'data-part="daily-profiles"' in page


def test_cli_report_and_its_errors(demo_env: dict[str, str], tmp_path: Path) -> None:
    cascade = str(Path(sys.executable).with_name("cascade"))
    ok = subprocess.run(
        [cascade, "report", "--patient", "p001", "--days", "14", "--out", str(tmp_path)],
        env=demo_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ok.returncode == 0, ok.stderr
    [line] = ok.stdout.strip().splitlines()
    assert Path(line).parent == tmp_path and Path(line).is_file()
    bad = subprocess.run(
        [cascade, "report", "--patient", "nobody", "--out", str(tmp_path)],
        env=demo_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith("error: unknown patient 'nobody'") and "Traceback" not in bad.stderr
