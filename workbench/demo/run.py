"""`cascade demo` / `make demo`: run the whole pipeline on the embedded default and say what it made."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from workbench.api import API_PORT
from workbench.settings import Settings, get_settings


def summary_lines(run: object, settings: Settings) -> list[str]:
    """Where the reports are, the PostgreSQL URL, rows per published mart, and what to try next."""
    from workbench.publish.postgres import connect, connection_url, redact_url
    from workbench.publish.publisher import load_config

    lines = [*run.lines(), ""]  # type: ignore[attr-defined]
    config = load_config()
    url = connection_url(settings)
    lines.append(f"PostgreSQL (published marts): {redact_url(url)}")
    with connect(settings) as con:
        for spec in config.tables:
            rows = con.execute(f'select count(*) from "{config.schema}"."{spec.name}"').fetchone()
            lines.append(f"  {config.schema}.{spec.name}: {rows[0] if rows else 0} rows")
        newest = con.execute(
            f'select patient_id, max(reading_date) from "{config.schema}"."fct_glucose_readings" '
            "group by patient_id order by patient_id limit 1"
        ).fetchone()
    patient, day = (str(newest[0]), str(newest[1])) if newest else ("p001", "YYYY-MM-DD")
    api = f"http://127.0.0.1:{API_PORT}"
    lines += [
        "",
        f"Lake: {settings.home}",
        "Next (after `source .venv/bin/activate`):",
        "  cascade tables --ref main",
        '  cascade sql "select * from marts.mrt_glucose_overview order by reading_date desc limit 5"',
        "  cascade log main -n 5",
        "  cascade runs",
        '  psql "$(cascade postgres url)" -c "\\dt marts.*"',
        "  cascade dashboard                  # the glucose dashboard (Voila)",
        "  cascade lab                        # JupyterLab with the notebooks",
        f"  cascade report --patient {patient} --pdf",
        f"  T=$(cascade token create --patient {patient}); cascade api &",
        f'  curl -H "Authorization: Bearer $T" "{api}/api/v1/glucose/readings?date={day}"',
        "  cascade hub                        # every service, data freshness and the runs",
    ]
    return lines


def run_demo(pipeline: Path | None = None, echo: Callable[[str], None] = print) -> bool:
    """Run the pipeline once; print the summary. Returns whether the run succeeded."""
    from workbench.pipeline.runner import run_pipeline

    settings = get_settings()
    echo(f"Running the Cascade pipeline on the embedded lake in {settings.home} (demo Nightscout data) ...")
    run = run_pipeline(pipeline, settings=settings)
    if run.status != "success":
        for line in run.lines():
            echo(line)
        return False
    for line in summary_lines(run, settings):
        echo(line)
    return True
