"""One source of truth for a patient's time zone: the site's zone in sites.yaml, landed in
raw.patients. Correcting it re-cuts that patient's days on the next run.

Regression: raw rows were stamped with the zone at ingestion (`patient_tz`) and bronze cut the days
with that stamp; `raw.patients.time_zone` was a second copy nothing used, so a corrected zone
changed nothing for the readings already landed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ingest"))

from ingest_helpers import END, FAST_RETRY, SECRET, SECRET_ENV, make_site  # noqa: E402

from tests.pipeline.lake_compare import same_tables  # noqa: E402
from workbench.demo.server import DemoServer  # noqa: E402
from workbench.demo.simulate import DemoDataset  # noqa: E402


@pytest.fixture
def server() -> Iterator[DemoServer]:
    with DemoServer(DemoDataset(seed=3, patients=2, days=2, end=END), secret=SECRET) as server:
        yield server


def _cut_ok(lh: object, patient_id: str, zone: str) -> None:
    """Every silver reading of the patient is on the local day of `zone`."""
    rows = lh.sql(  # type: ignore[attr-defined]
        "select patient_tz, reading_ts_utc, reading_date from silver.fct_glucose_readings where patient_id = ?",
        [patient_id],
    )
    assert len(rows) > 500 and set(rows["patient_tz"]) == {zone}
    for ts, day in zip(rows["reading_ts_utc"], rows["reading_date"], strict=True):
        local = ts.to_pydatetime().replace(tzinfo=UTC).astimezone(ZoneInfo(zone))
        assert local.date() == pd.Timestamp(day).date(), (ts, day, zone)


def test_the_patients_row_records_when_its_zone_was_landed(cascade_home: Path) -> None:
    from workbench.ingest.loader import land_patient
    from workbench.ingest.sites import Site
    from workbench.lakehouse import Lakehouse

    lh = Lakehouse("dev")
    site = Site(site_id="s1", patient_id="p1", url="https://ns.example", time_zone="Europe/Berlin", secret_env="X")
    t1, t2, t3 = (datetime(2026, 3, d, 8, 0, tzinfo=UTC) for d in (1, 2, 3))

    def since() -> datetime:
        return lh.sql_arrow("select time_zone_since from raw.patients")["time_zone_since"][0].as_py()

    assert land_patient(lh, site, t1) and since() == t1  # a new patient: its zone is new
    assert not land_patient(lh, site, t2)  # nothing changed: no commit
    assert land_patient(lh, replace(site, display_name="Ann"), t2) and since() == t1
    assert land_patient(lh, replace(site, time_zone="America/New_York"), t3) and since() == t3


@pytest.mark.slow
def test_a_corrected_zone_recuts_the_patients_days_and_equals_a_full_rebuild(
    cascade_home: Path, server: DemoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.ingest.run import ingest
    from workbench.lakehouse import Lakehouse
    from workbench.transform.runner import build

    monkeypatch.setenv(SECRET_ENV, SECRET)
    sites = [make_site(server, "p001"), make_site(server, "p002")]
    wrong = sites[0].time_zone
    report = ingest(branch="dev", sites=sites, retry=FAST_RETRY)
    assert report.changed and not report.failed
    assert build(branch="dev").success
    _cut_ok(Lakehouse("dev"), "p001", wrong)
    other = Lakehouse("dev").sql("select * from silver.fct_glucose_readings where patient_id = 'p002'")

    # the zone in sites.yaml was wrong: corrected, with nothing new at the source
    right = "America/Los_Angeles" if wrong != "America/Los_Angeles" else "Europe/Berlin"
    sites[0] = make_site(server, "p001", time_zone=right)
    report = ingest(branch="dev", sites=sites, retry=FAST_RETRY)
    assert report.new_rows == 0 and report.changed  # no new rows, but the run has work to do
    patients = Lakehouse("dev").sql("select patient_id, time_zone, time_zone_since from raw.patients order by 1")
    assert list(patients["time_zone"]) == [right, sites[1].time_zone]
    result = build(branch="dev")
    assert result.success, result.failures()
    dev = Lakehouse("dev")
    _cut_ok(dev, "p001", right)
    # the other patient's rows are untouched
    again = dev.sql("select * from silver.fct_glucose_readings where patient_id = 'p002'")
    key = ["reading_ts_utc"]
    assert again.sort_values(key, ignore_index=True).equals(other.sort_values(key, ignore_index=True))
    # the day marts follow the new cut: p001's local days are Los Angeles days now
    daily = dev.sql(
        "select reading_date, count(*) as n from silver.fct_glucose_readings where patient_id = 'p001' group by 1"
    )
    marts = dev.sql("select reading_date from marts.mrt_glucose_daily_metrics where patient_id = 'p001'")
    assert sorted(marts["reading_date"]) == sorted(daily["reading_date"])

    # every layer equals a from-scratch full-refresh build on the same raw data
    dev.lake.create_branch("rebuild", "dev")
    rebuilt = build(branch="rebuild", full_refresh=True)
    assert rebuilt.success, rebuilt.failures()
    same_tables(dev, Lakehouse("rebuild"))

    # the run after the correction with nothing new: the zone is not new any more
    assert not ingest(branch="dev", sites=sites, retry=FAST_RETRY).changed


@pytest.mark.slow
def test_a_correction_that_empties_a_day_deletes_it_from_the_incremental_marts(
    cascade_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: a day that existed only under the old cut (p001's last Berlin day, 2026-11-20, is
    2026-11-19 in Los Angeles) stayed in the day marts after the correction, because the marts
    recomputed only the days of new silver rows; p002 (Tokyo) still has readings that day."""
    from workbench.ingest.run import ingest
    from workbench.lakehouse import Lakehouse
    from workbench.transform.runner import build

    end = datetime(2026, 11, 20, 5, 0, tzinfo=UTC)  # 06:00 in Berlin, 14:00 in Tokyo, 21:00 the day before in LA
    vanished = pd.Timestamp("2026-11-20").date()
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with DemoServer(DemoDataset(seed=3, patients=2, days=2, end=end), secret=SECRET) as server:
        sites = [
            make_site(server, "p001", time_zone="Europe/Berlin"),
            make_site(server, "p002", time_zone="Asia/Tokyo"),
        ]
        assert ingest(branch="dev", sites=sites, retry=FAST_RETRY).changed
        assert build(branch="dev").success

        def days(table: str, patient_id: str, column: str = "reading_date") -> set[object]:
            rows = Lakehouse("dev").sql(f"select distinct {column} from {table} where patient_id = ?", [patient_id])
            return {pd.Timestamp(day).date() for day in rows[column]}

        assert vanished in days("marts.mrt_glucose_daily_metrics", "p001")
        assert vanished in days("marts.mrt_glucose_daily_metrics", "p002")

        sites[0] = make_site(server, "p001", time_zone="America/Los_Angeles")
        report = ingest(branch="dev", sites=sites, retry=FAST_RETRY)
        assert report.new_rows == 0 and report.changed
        result = build(branch="dev")
        assert result.success, result.failures()

    assert vanished not in days("silver.fct_glucose_readings", "p001")
    for table in ("marts.mrt_glucose_daily_metrics", "marts.mrt_glucose_overview"):
        assert days(table, "p001") == days("silver.fct_glucose_readings", "p001"), table
        assert vanished in days(table, "p002"), table
    dev = Lakehouse("dev")
    dev.lake.create_branch("rebuild", "dev")
    rebuilt = build(branch="rebuild", full_refresh=True)
    assert rebuilt.success, rebuilt.failures()
    same_tables(dev, Lakehouse("rebuild"))


def _one_site_yaml(home: Path, server: DemoServer, zone: str) -> None:
    (home / "sites.yaml").write_text(
        "sites:\n"
        "  - id: site-p001\n"
        "    patient_id: p001\n"
        f"    url: {server.site_url('p001')}\n"
        f"    time_zone: {zone}\n"
        f"    secret_env: {SECRET_ENV}\n"
    )


@pytest.mark.slow
def test_a_correction_that_empties_a_day_of_every_patient_deletes_it_everywhere(
    pg_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: with no patient left on a day of the old cut (a one-patient lake), the emptied day
    stayed in bronze, silver and the incremental marts (and so in PostgreSQL): delete+insert replaced
    only the days the new batch had rows for, and the re-cut produced none for that day. (The stack's
    variant, dbt-trino's delete+insert: tests/stack/test_time_zone.py.)"""
    monkeypatch.setenv(SECRET_ENV, SECRET)
    emptied_day_is_deleted_everywhere(pg_home)


def emptied_day_is_deleted_everywhere(home: Path) -> None:
    """A one-patient lake; a run; the zone corrected in sites.yaml; a second run: p001's last Berlin
    day and week (Monday 2026-11-23, 00:00–06:00) are Sunday evening in Los Angeles, so no patient
    has data on them any more. They are gone from every layer, mart and published table, and `main`
    equals a from-scratch full-refresh build on the same raw data. Settings (profile, home, the
    site's secret) come from the environment."""
    from workbench.lakehouse import Lakehouse
    from workbench.pipeline.warm import run_warm
    from workbench.publish.postgres import connect
    from workbench.publish.publisher import load_config
    from workbench.transform.runner import build

    end = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
    day = pd.Timestamp("2026-11-23").date()  # both the vanished day and the vanished ISO week (a Monday)
    keys = {"reading_date", "week_start"}

    def vanished_in(lh: Lakehouse) -> dict[str, int]:
        """Rows on the vanished day / week, per table that has a day or week column."""
        found = {}
        for table in lh.tables():
            columns = set(lh.sql(f"select * from {table} limit 0").columns)
            for key in keys & columns:
                n = int(lh.sql(f"select count(*) as n from {table} where {key} = ?", [day])["n"][0])
                if n:
                    found[f"{table}.{key}"] = n
        return found

    with DemoServer(DemoDataset(seed=3, patients=1, days=2, end=end), secret=SECRET) as server:
        _one_site_yaml(home, server, "Europe/Berlin")
        first = run_warm(retry=FAST_RETRY)
        assert first.status == "promoted", first
        before = vanished_in(Lakehouse("main"))
        for table in ("bronze.stg_glucose_entries", "silver.fct_glucose_readings", "marts.mrt_glucose_weekly"):
            assert any(name.startswith(table) for name in before), (table, before)
        assert "marts.mrt_glucose_daily_metrics.reading_date" in before

        _one_site_yaml(home, server, "America/Los_Angeles")  # the zone in sites.yaml was wrong
        second = run_warm(retry=FAST_RETRY)
        assert second.status == "promoted", second
        assert second.new_rows == 0

    main = Lakehouse("main")
    assert vanished_in(main) == {}
    main.lake.create_branch("rebuild", "main")
    rebuilt = build(branch="rebuild", full_refresh=True)
    assert rebuilt.success, rebuilt.failures()
    same_tables(main, Lakehouse("rebuild"))

    config = load_config()
    with connect() as con:
        for spec in config.tables:
            columns = [c[0] for c in con.execute(f'select * from "{config.schema}"."{spec.name}" limit 0').description]
            count = con.execute(f'select count(*) from "{config.schema}"."{spec.name}"').fetchone()
            assert count is not None and count[0] == len(main.sql(f"select * from {spec.source}")), spec.name
            for key in keys & set(columns):
                row = con.execute(f'select count(*) from "{config.schema}"."{spec.name}" where {key} = %s', [day])
                assert row.fetchone() == (0,), (spec.name, key)
