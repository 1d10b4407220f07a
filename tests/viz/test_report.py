"""Static AGP reports: self-contained HTML (plotly.js inlined, no CDN), PDF through Chromium, CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from plotly.offline import get_plotlyjs

from workbench.settings import Settings
from workbench.viz.report import export_report, export_reports, find_chromium


def test_report_is_one_self_contained_html_file(demo_settings: Settings, tmp_path: Path) -> None:
    [path] = export_report("p002", tmp_path / "out", days=7, settings=demo_settings)
    assert re.fullmatch(r"agp_p002_\d{4}-\d\d-\d\d_\d{4}-\d\d-\d\d\.html", path.name)
    page = path.read_text(encoding="utf-8")
    before, bundle, after = page.partition(get_plotlyjs())
    assert bundle and len(bundle) > 3_000_000  # plotly.js itself is inlined, once
    rest = before + after
    assert get_plotlyjs() not in rest
    assert not re.search(r"<script[^>]*\bsrc=", rest) and "cdn" not in rest.lower() and "<link" not in rest
    for chart in ("agp", "time_in_ranges", "daily_trend"):
        assert f'"meta":{{"chart":"{chart}"}}' in page
    assert page.count('class="cascade-card"') == 10 and "Demo patient 2 (p002)" in page
    assert "(7 days)" in page


def test_export_reports_writes_one_per_patient(demo_settings: Settings, tmp_path: Path) -> None:
    paths = export_reports(tmp_path, ref="main", pdf=False, settings=demo_settings)
    assert sorted(p.name.split("_")[1] for p in paths) == ["p001", "p002"]
    assert all(p.suffix == ".html" and p.stat().st_size > 0 for p in paths)


@pytest.mark.skipif(find_chromium() is None, reason="needs Chromium (Debian package chromium)")
def test_pdf_is_printed_by_headless_chromium(demo_settings: Settings, tmp_path: Path) -> None:
    paths = export_report("p001", tmp_path, pdf=True, settings=demo_settings)
    assert [p.suffix for p in paths] == [".html", ".pdf"]
    pdf = paths[1].read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000


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
