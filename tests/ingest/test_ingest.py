"""End-to-end ingestion over real HTTP: demo server → dlt → stage → Iceberg (`raw` on dev)."""

from __future__ import annotations

import json
import time

import pytest
from ingest_helpers import SECRET, SECRET_ENV, count, make_site

from workbench.demo.server import DemoServer
from workbench.errors import CascadeError
from workbench.ingest.errors import NightscoutAuthError


def test_three_runs_land_every_valid_record_exactly_once(demo: DemoServer, run_ingest, lake) -> None:
    site = make_site(demo)
    expected = demo.control.dataset.expected_valid_entries("p001")
    reports = [run_ingest([site]) for _ in range(3)]
    lh = lake()
    assert count(lh, "raw.glucose_entries") == expected
    assert count(lh, "raw.treatments") == demo.control.dataset.expected_treatments("p001")
    assert lh.sql("select count(distinct _id) as n from raw.glucose_entries")["n"].iloc[0] == expected
    first, second, third = (r.sites[0] for r in reports)
    assert first.new == expected and second.new == 0 and third.new == 0
    # later runs only re-read the overlap window, they do not refetch everything
    assert 0 < second.fetched < first.fetched / 5
    # the demo serves some documents twice: counted as duplicates, landed once
    assert first.duplicate > 0


def test_new_readings_are_appended_and_nothing_else_changes(demo: DemoServer, run_ingest, lake) -> None:
    site = make_site(demo)
    run_ingest([site])
    lh = lake()
    before = lh.sql("select _id, sgv, date from raw.glucose_entries order by _id")
    newest = int(before["date"].max())
    demo.control.advance(60)
    report = run_ingest([site]).sites[0]
    after = lake().sql("select _id, sgv, date from raw.glucose_entries order by _id")
    added = after[~after["_id"].isin(before["_id"])]
    assert report.new == len(added) == demo.control.dataset.expected_valid_entries("p001") - len(before)
    assert 10 <= len(added) <= 13  # an hour of 5-minute readings (12, maybe one sitting in a gap less)
    assert (added["date"] > newest).all()
    kept = after[after["_id"].isin(before["_id"])].reset_index(drop=True)
    assert kept.equals(before.reset_index(drop=True))


def test_late_records_inside_the_overlap_window_are_picked_up(demo: DemoServer, run_ingest, lake) -> None:
    site = make_site(demo, overlap_minutes=120)
    run_ingest([site])
    late = demo.control.add_late_entries("p001", count=3, minutes_ago=45)
    report = run_ingest([site]).sites[0]
    ids = set(lake().sql("select _id from raw.glucose_entries where device = 'late-uploader'")["_id"])
    assert ids == {d["_id"] for d in late}
    assert report.new == 3


def test_late_records_older_than_the_overlap_need_a_full_resync(demo: DemoServer, run_ingest, lake) -> None:
    site = make_site(demo, overlap_minutes=30)
    run_ingest([site])
    demo.control.add_late_entries("p001", count=2, minutes_ago=300)
    run_ingest([site])
    assert count(lake(), "raw.glucose_entries", "device = 'late-uploader'") == 0
    report = run_ingest([site], full_resync=True).sites[0]
    lh = lake()
    assert count(lh, "raw.glucose_entries", "device = 'late-uploader'") == 2
    assert report.new == 2  # a full resync refetches everything and adds only what was missing
    assert count(lh, "raw.glucose_entries") == demo.control.dataset.expected_valid_entries("p001")


def test_auth_failure_is_one_line_naming_the_site_without_the_secret(
    demo: DemoServer, run_ingest, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(SECRET_ENV, "wrong-" + SECRET)
    site = make_site(demo)
    with pytest.raises(NightscoutAuthError) as info:
        from workbench.ingest.run import ingest

        ingest(sites=[site])
    message = str(info.value)
    assert "\n" not in message
    assert site.url in message and "401" in message and SECRET_ENV in message
    assert SECRET not in message and "wrong-" not in message
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err


def test_a_5xx_then_success_is_retried(demo: DemoServer, run_ingest, lake) -> None:
    demo.control.fail_next(times=2, status=503)
    demo.control.fail_next(times=1, status=429)
    report = run_ingest([make_site(demo)]).sites[0]
    assert demo.control.failures_served == 3
    assert report.retries >= 3
    assert count(lake(), "raw.glucose_entries") == demo.control.dataset.expected_valid_entries("p001")


def test_a_site_that_keeps_failing_ends_with_one_clear_error(demo: DemoServer, run_ingest) -> None:
    demo.control.fail_next(times=50, status=502)
    with pytest.raises(CascadeError, match=r"kept failing \(HTTP 502\) after 4 attempts"):
        run_ingest([make_site(demo)])


def test_malformed_records_are_quarantined_with_reasons_and_no_valid_record_is_dropped(
    demo: DemoServer, run_ingest, lake
) -> None:
    dataset = demo.control.dataset
    patient = dataset.patient("p001")
    assert patient is not None
    t = dataset.visible_until - 30 * 60_000
    bad = {
        "no-sgv": ({"type": "sgv", "date": t}, "missing_sgv"),
        "text-sgv": ({"type": "sgv", "date": t, "sgv": "high"}, "non_numeric_sgv"),
        "code-sgv": ({"type": "sgv", "date": t, "sgv": 9}, "sgv_error_code"),
        "big-sgv": ({"type": "sgv", "date": t, "sgv": 999}, "sgv_out_of_range"),
        "future": ({"type": "sgv", "date": int(time.time() * 1000) + 86_400_000, "sgv": 100}, "future_date"),
        "bad-date": ({"type": "sgv", "date": "soon", "dateString": "later", "sgv": 100}, "unparseable_date"),
        "seconds": ({"type": "sgv", "date": t // 1000, "sgv": 100}, "implausible_date"),
        "bad-type": ({"type": "glucose", "date": t, "sgv": 100}, "invalid_type"),
        "dict-dir": ({"type": "sgv", "date": t, "sgv": 100, "direction": {"x": 1}}, "wrong_field_type:direction"),
        "mbg-text": ({"type": "mbg", "date": t, "mbg": "n/a"}, "non_numeric_mbg"),
    }
    for doc_id, (doc, _) in bad.items():
        patient.extra_entries.append({"_id": doc_id, **doc, "_serve_date": t, "_malformed": "test"})
    # borderline but valid: kept, with their types coerced
    good = [
        {"_id": "str-sgv", "type": "sgv", "date": t + 1, "sgv": "123", "_serve_date": t + 1},
        {"_id": "edge-low", "type": "sgv", "date": t + 2, "sgv": 40, "_serve_date": t + 2},
        {"_id": "edge-high", "type": "sgv", "date": t + 3, "sgv": 400, "_serve_date": t + 3},
        {"type": "sgv", "date": t + 4, "sgv": 150, "device": "no-id", "_serve_date": t + 4},
    ]
    patient.extra_entries.extend(good)
    patient.extra_entries.sort(key=lambda d: d["_serve_date"])
    report = run_ingest([make_site(demo)]).sites[0]
    run_ingest([make_site(demo)])  # rejects are not duplicated by a second run either

    lh = lake()
    rejects = lh.sql("select _id, reason, payload, patient_id from raw.glucose_entries_rejects")
    by_id = dict(zip(rejects["_id"], rejects["reason"], strict=True))
    for doc_id, (doc, reason) in bad.items():
        assert by_id.get(doc_id) == reason, doc_id
        payload = json.loads(rejects.loc[rejects["_id"] == doc_id, "payload"].iloc[0])
        assert payload == {"_id": doc_id, **doc}
    assert set(rejects["patient_id"]) == {"p001"}
    assert len(rejects) == sum(dataset.expected_malformed("p001").values())
    assert report.rejected == len(rejects)
    assert report.reasons["sgv_error_code"] >= 1

    entries = lh.sql("select _id, sgv from raw.glucose_entries")
    assert len(entries) == dataset.expected_valid_entries("p001")
    sgv = dict(zip(entries["_id"], entries["sgv"], strict=True))
    assert sgv["str-sgv"] == 123 and sgv["edge-low"] == 40 and sgv["edge-high"] == 400
    fallback = entries[entries["_id"].str.startswith("fallback-")]
    assert list(fallback["sgv"]) == [150]


def test_a_new_field_becomes_a_new_column(demo: DemoServer, run_ingest, lake) -> None:
    site = make_site(demo)
    run_ingest([site])
    assert "battery_level" not in lake().sql("select * from raw.glucose_entries limit 1").columns
    demo.control.advance(30)
    demo.control.add_field("batteryLevel", 87)
    run_ingest([site])
    lh = lake()
    frame = lh.sql(
        "select count(*) filter (where battery_level = 87) as with_field, "
        "count(*) filter (where battery_level is null) as without from raw.glucose_entries"
    )
    assert frame["with_field"].iloc[0] >= 5  # the new readings carry it
    assert frame["without"].iloc[0] > 500  # the old rows stay as they were
    assert count(lh, "raw.glucose_entries") == demo.control.dataset.expected_valid_entries("p001")


def test_several_sites_keep_their_patient_id_in_every_table(demo: DemoServer, run_ingest, lake) -> None:
    sites = [make_site(demo, "p001"), make_site(demo, "p002")]
    report = run_ingest(sites)
    assert [s.site_id for s in report.sites] == ["site-p001", "site-p002"]
    lh = lake()
    for table in ("raw.glucose_entries", "raw.treatments", "raw.glucose_entries_rejects"):
        frame = lh.sql(f"select patient_id, site_id, count(*) as n from {table} group by all order by 1")
        assert list(frame["patient_id"]) == ["p001", "p002"], table
        assert list(frame["site_id"]) == ["site-p001", "site-p002"], table
    for pid in ("p001", "p002"):
        assert count(lh, "raw.glucose_entries", f"patient_id = '{pid}'") == (
            demo.control.dataset.expected_valid_entries(pid)
        )
    patients = lh.sql("select * from raw.patients order by patient_id")
    assert list(patients["patient_id"]) == ["p001", "p002"]
    assert set(patients.columns) == {
        "patient_id",
        "display_name",
        "time_zone",
        "site_id",
        "site_url",
        "time_zone_since",
    }
    assert list(patients["time_zone"]) == [s.time_zone for s in sites]
    assert patients["time_zone_since"].notna().all()  # a new patient's zone is new
    tz = lh.sql("select distinct patient_id, patient_tz from raw.glucose_entries order by 1")
    assert list(tz["patient_tz"]) == [s.time_zone for s in sites]


def test_raw_tables_follow_the_column_contract(demo: DemoServer, run_ingest, lake) -> None:
    run_ingest([make_site(demo)])
    lh = lake()
    entries = lh.table("raw.glucose_entries").schema()
    types = {f.name: str(f.field_type) for f in entries.fields}
    for name, kind in {
        "_id": "string",
        "type": "string",
        "sgv": "long",
        "mbg": "double",
        "date": "long",
        "date_string": "string",
        "direction": "string",
        "noise": "long",
        "device": "string",
        "utc_offset": "long",
        "patient_id": "string",
        "patient_tz": "string",
        "site_id": "string",
        "_ingested_at": "timestamptz",
    }.items():
        assert types.get(name) == kind, name
    treatments = {f.name: str(f.field_type) for f in lh.table("raw.treatments").schema().fields}
    for name, kind in {
        "_id": "string",
        "event_type": "string",
        "created_at": "string",
        "date": "long",
        "insulin": "double",
        "carbs": "double",
        "duration": "double",
        "absolute": "double",
        "rate": "double",
        "notes": "string",
        "entered_by": "string",
        "_ingested_at": "timestamptz",
    }.items():
        assert treatments.get(name) == kind, name
    rejects = {f.name for f in lh.table("raw.glucose_entries_rejects").schema().fields}
    assert {"_id", "patient_id", "site_id", "reason", "payload", "_ingested_at"} <= rejects
    derived = lh.sql("select created_at, date from raw.treatments limit 5")
    for created, ms in zip(derived["created_at"], derived["date"], strict=True):
        from workbench.ingest.validate import parse_iso_ms

        assert parse_iso_ms(created) == ms


def test_the_stage_holds_parquet_and_dlt_state_lives_under_cascade_home(
    demo: DemoServer, run_ingest, cascade_home
) -> None:
    run_ingest([make_site(demo)])
    staged = list((cascade_home / "stage").rglob("glucose_entries/*.parquet"))
    assert staged, "dlt wrote no Parquet into the stage"
    assert list((cascade_home / "ingest" / "dlt").glob("*/state.json"))


def test_devicestatus_is_optional_and_keeps_nested_documents_as_json(demo: DemoServer, run_ingest, lake) -> None:
    run_ingest([make_site(demo)])
    assert "raw.devicestatus" not in lake().tables()
    run_ingest([make_site(demo, devicestatus=True)])
    lh = lake()
    frame = lh.sql("select patient_id, uploader, pump from raw.devicestatus")
    patient = demo.control.dataset.patient("p001")
    assert patient is not None
    visible = [d for d in patient.devicestatus if d["_serve_date"] <= demo.control.dataset.visible_until]
    assert len(frame) == len(visible) and set(frame["patient_id"]) == {"p001"}
    assert json.loads(frame["pump"].iloc[0])["battery"] == {"percent": 80}


def test_a_field_that_changes_type_keeps_every_value_in_a_variant_column(demo: DemoServer, run_ingest, lake) -> None:
    site = make_site(demo)
    demo.control.add_field("pumpIob", 2)
    run_ingest([site])
    demo.control.advance(30)
    demo.control.add_field("pumpIob", 1.5)
    run_ingest([site])
    demo.control.advance(30)
    demo.control.add_field("pumpIob", "n/a")
    run_ingest([site])
    lh = lake()
    assert count(lh, "raw.glucose_entries", "pump_iob = 2") >= 500  # the first type stays
    assert count(lh, "raw.glucose_entries", "pump_iob__v_double = 1.5") >= 5
    assert count(lh, "raw.glucose_entries", "pump_iob__v_string = 'n/a'") >= 5
    assert count(lh, "raw.glucose_entries") == demo.control.dataset.expected_valid_entries("p001")
    assert count(lh, "raw.glucose_entries", "_dlt_load_id is null") == 0  # lineage to the stage package


def test_a_second_ingest_of_the_same_site_and_branch_is_refused_while_one_runs(
    demo: DemoServer, run_ingest, cascade_home
) -> None:
    from workbench.errors import LockedError
    from workbench.ingest.stage import StageArea
    from workbench.settings import get_settings

    site = make_site(demo)
    with StageArea(get_settings(), site.site_id, "dev").lock(), pytest.raises(LockedError, match=site.site_id):
        run_ingest([site])
    assert run_ingest([site]).sites[0].new > 0  # free again afterwards


def test_ingest_targets_the_given_branch_only(demo: DemoServer, run_ingest, lake) -> None:
    from workbench.lakehouse import Lakehouse

    site = make_site(demo)
    run_ingest([site])
    dev_rows = count(lake(), "raw.glucose_entries")
    lake().branch("feature", from_ref="dev")
    demo.control.advance(60)
    report = run_ingest([site], branch="feature").sites[0]
    assert report.new == demo.control.dataset.expected_valid_entries("p001") - dev_rows  # only what is new
    assert count(Lakehouse("feature"), "raw.glucose_entries") == dev_rows + report.new
    assert count(lake(), "raw.glucose_entries") == dev_rows  # dev untouched
