"""`cascade dashboard` and `cascade report`: thin commands over `workbench.viz`."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from workbench.lake.api import MAIN_BRANCH


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def register(app: typer.Typer) -> None:
    """Add the dashboard and report commands to the `cascade` app."""

    @app.command("dashboard")
    def dashboard_command(
        port: Annotated[int, typer.Option(help="port on localhost (0 = a free one)")] = 8866,
        browser: Annotated[bool, typer.Option("--browser/--no-browser", help="open a web browser")] = True,
        name: Annotated[str, typer.Option(help="dashboard notebook under dashboards/")] = "glucose_overview.ipynb",
        host: Annotated[
            str, typer.Option(help="address to listen on; other than 127.0.0.1 needs CASCADE_DASHBOARD_TOKEN")
        ] = "127.0.0.1",
    ) -> None:
        """Serve the glucose dashboard with Voila on localhost and print its URL (Ctrl-C stops).

        Example: cascade dashboard --port 8866 --no-browser
        """
        from workbench.viz.serve import dashboard_path, start_voila, stop_voila

        proc, url = start_voila(dashboard_path(name), port=port or None, browser=browser, host=host)
        signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops Voila too, like Ctrl-C
        typer.echo(f"dashboard: {url}")
        typer.echo(f"  patient, period and ref are picked on the page, or in the URL: {url}?patient=p001&ref=main")
        try:
            proc.wait()
        except KeyboardInterrupt:
            pass
        finally:
            stop_voila(proc)

    @app.command("report")
    def report_command(
        patient: Annotated[str, typer.Option(help="patient id (see the dashboard)")],
        days: Annotated[int, typer.Option(help="days up to the patient's last day with data")] = 14,
        out: Annotated[Path, typer.Option(help="folder for the report")] = Path("reports"),
        ref: Annotated[str, typer.Option(help="lake ref (main reads the published marts)")] = MAIN_BRANCH,
        end: Annotated[str | None, typer.Option(help="last day of the period (YYYY-MM-DD)")] = None,
        pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="also print a PDF (needs Chromium)")] = False,
    ) -> None:
        """Export a self-contained HTML AGP report (works offline) for one patient.

        Example: cascade report --patient p001 --days 14 --out reports/
        """
        from workbench.viz.report import export_report

        for path in export_report(patient, out, ref=ref, days=days, end=end, pdf=pdf):
            typer.echo(str(path))
