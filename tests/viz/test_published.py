"""Reading the published PostgreSQL marts: a real embedded PostgreSQL, marts published from `main`."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from pydantic import SecretStr

from workbench.lakehouse import Lakehouse
from workbench.settings import Settings
from workbench.viz.data import GlucoseData
from workbench.viz.errors import NoGlucoseDataError
from workbench.viz.view import load_view


@pytest.fixture(scope="module")
def published(demo_home: Path) -> Iterator[Settings]:
    """Settings whose CASCADE_POSTGRES_URL points at a PostgreSQL holding the daily and AGP marts."""
    from workbench.publish.postgres import EmbeddedPostgres
    from workbench.publish.publisher import PublishConfig, TableSpec, publish
    from workbench.settings import load_settings

    # outside pytest's tmp folders: PostgreSQL runs as its own system user and must reach its data dir
    pg_home = Path(tempfile.mkdtemp(prefix="cascade-viz-pg-"))
    server = EmbeddedPostgres(pg_home)
    try:
        url = server.url()
        settings = load_settings(home=demo_home, profile="embedded", warehouse=None, postgres_url=SecretStr(url))
        lake = Lakehouse("main", settings=settings)
        names = ("mrt_glucose_daily_metrics", "mrt_agp_profile")
        config = PublishConfig(tables=tuple(TableSpec(n, f"marts.{n}") for n in names))
        tables = {n: lake.sql_arrow(f"select * from marts.{n}") for n in names}
        publish(tables, commit_id=lake.log(limit=1)[0].id, config=config, settings=settings)
        yield settings
    finally:
        server.destroy()  # its data dir is outside pg_home when running as root
        shutil.rmtree(pg_home, ignore_errors=True)


def test_main_reads_the_published_marts(published: Settings, demo_settings: Settings) -> None:
    from_pg = GlucoseData("main", settings=published)
    from_lake = GlucoseData("main", source="lake", settings=demo_settings)
    assert from_pg.source_of("marts.mrt_glucose_daily_metrics") == "postgres"
    assert from_pg.source_of("marts.mrt_agp_profile") == "postgres"
    assert from_lake.source_of("marts.mrt_glucose_daily_metrics") == "lake@main"
    lake_patients = from_lake.patients()
    pg_patients = from_pg.patients()
    pd.testing.assert_frame_equal(pg_patients, lake_patients)
    row = lake_patients.iloc[1]
    pg_daily = from_pg.daily_metrics(row.patient_id, row.first_date, row.last_date)
    lake_daily = from_lake.daily_metrics(row.patient_id, row.first_date, row.last_date)
    assert pg_daily["reading_date"].tolist() == lake_daily["reading_date"].tolist()
    pd.testing.assert_series_equal(pg_daily["mean_glucose"], lake_daily["mean_glucose"])


def test_view_from_postgres_equals_view_from_the_lake(published: Settings, demo_settings: Settings) -> None:
    pg_view = load_view(patient="p002", settings=published)
    lake_view = load_view(patient="p002", source="lake", settings=demo_settings)
    assert pg_view.agp_source == "postgres" and lake_view.agp_source == "lake@main"
    assert pg_view.summary == lake_view.summary
    assert "data from postgres" in pg_view.header_html()
    pd.testing.assert_frame_equal(
        pg_view.agp[["minute_of_day", "p50"]].astype(float), lake_view.agp[["minute_of_day", "p50"]].astype(float)
    )


def test_postgres_only_source_and_other_refs(published: Settings) -> None:
    only_pg = GlucoseData("main", source="postgres", settings=published)
    last = only_pg.patient("p001")["last_date"]
    with pytest.raises(NoGlucoseDataError, match="only the last 14 days"):
        only_pg.agp_profile("p001", last - pd.Timedelta(days=6), last)
    assert GlucoseData("dev", settings=published).source_of("marts.mrt_glucose_daily_metrics") == "lake@dev"
