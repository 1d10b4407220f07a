"""Every endpoint over real HTTP against the running API and the published demo marts: status, JSON
schema (from the app's own /openapi.json), values against PostgreSQL, units, pagination."""

from __future__ import annotations

import math
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.api.conftest import Api, published_rows
from workbench.metrics import MGDL_PER_MMOLL

READING_FIELDS = {
    "patient_id",
    "reading_timestamp",
    "reading_date",
    "glucose_value",
    "units",
    "glucose_category",
    "rolling_avg_3",
    "direction",
}


@pytest.fixture(scope="module")
def openapi(api: Api) -> dict[str, Any]:
    answer = api.client().get("openapi.json")
    assert answer.status_code == 200
    return dict(answer.json())


def validate(openapi: dict[str, Any], path: str, body: Any, status: str = "200") -> None:
    """Validate a response body against the schema the app publishes for that path and status."""
    schema = openapi["paths"][path]["get"]["responses"][status]["content"]["application/json"]["schema"]
    Draft202012Validator({**schema, "components": openapi["components"]}).validate(body)


def a_day(api: Api, patient: str = "p001") -> date:
    rows = published_rows(
        api.settings,
        "select reading_date from marts.fct_glucose_readings where patient_id = %s "
        "group by 1 order by count(*) desc limit 1",
        (patient,),
    )
    return rows[0][0]  # type: ignore[return-value]


def test_readings_of_a_day_have_the_seeds_shape(api: Api, openapi: dict[str, Any]) -> None:
    day = a_day(api)
    with api.client(api.token(patient="p001")) as client:
        answer = client.get("api/v1/glucose/readings", params={"date": day.isoformat()})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    validate(openapi, "/api/v1/glucose/readings", body)
    assert body and all(set(r) == READING_FIELDS for r in body)
    assert {r["patient_id"] for r in body} == {"p001"} and {r["reading_date"] for r in body} == {day.isoformat()}
    assert answer.headers["X-Data-Source"] == "postgres" and "Link" not in answer.headers
    expected = published_rows(
        api.settings,
        "select reading_ts_utc, glucose_value, glucose_category, rolling_avg_3, trend_direction "
        "from marts.fct_glucose_readings where patient_id = 'p001' and reading_date = %s order by reading_ts_utc",
        (day,),
    )
    assert len(body) == len(expected)
    first, row = body[0], expected[0]
    assert datetime.fromisoformat(first["reading_timestamp"]) == row[0].replace(tzinfo=UTC)  # type: ignore[attr-defined]
    assert (first["glucose_value"], first["glucose_category"], first["direction"]) == (row[1], row[2], row[4])
    assert first["rolling_avg_3"] == pytest.approx(row[3])
    assert [r["reading_timestamp"] for r in body] == sorted(r["reading_timestamp"] for r in body)


def test_mmol_converts_glucose_and_nothing_else(api: Api) -> None:
    day = a_day(api)
    with api.client(api.token(patient="p001")) as client:
        mg = client.get("api/v1/glucose/readings", params={"date": day.isoformat()}).json()
        mmol = client.get("api/v1/glucose/readings", params={"date": day.isoformat(), "units": "mmol"}).json()
        bad = client.get("api/v1/glucose/readings", params={"date": day.isoformat(), "units": "mmolx"})
    assert bad.status_code == 422
    assert {r["units"] for r in mg} == {"mg/dL"} and {r["units"] for r in mmol} == {"mmol/L"}
    for a, b in zip(mg, mmol, strict=True):
        assert b["glucose_value"] == pytest.approx(a["glucose_value"] / MGDL_PER_MMOLL, abs=0.005)
        assert b["glucose_category"] == a["glucose_category"] and b["reading_timestamp"] == a["reading_timestamp"]


def test_time_range_and_range_limits(api: Api) -> None:
    day = a_day(api)
    start = datetime.combine(day, datetime.min.time(), UTC)
    with api.client(api.token(admin=True)) as client:
        ok = client.get(
            "api/v1/glucose/readings",
            params={"start": start.isoformat(), "end": (start + timedelta(hours=6)).isoformat(), "patient": "p002"},
        )
        too_long = client.get(
            "api/v1/glucose/readings",
            params={"start": start.isoformat(), "end": (start + timedelta(days=40)).isoformat()},
        )
        both = client.get("api/v1/glucose/readings", params={"date": day.isoformat(), "start": start.isoformat()})
        neither = client.get("api/v1/glucose/readings")
    assert ok.status_code == 200 and ok.json()
    assert all(start <= datetime.fromisoformat(r["reading_timestamp"]) < start + timedelta(hours=6) for r in ok.json())
    assert {r["patient_id"] for r in ok.json()} == {"p002"}
    for answer in (too_long, both, neither):
        assert answer.status_code == 422 and answer.json()["error"] == "invalid_request", answer.text


@pytest.mark.parametrize(
    ("path", "table", "key"),
    [
        ("/api/v1/glucose/daily", "mrt_glucose_daily_metrics", "reading_date"),
        ("/api/v1/glucose/overview", "mrt_glucose_overview", "reading_date"),
        ("/api/v1/glucose/periods", "mrt_glucose_period_metrics", "period_days"),
        ("/api/v1/glucose/agp", "mrt_agp_profile", "minute_of_day"),
    ],
)
def test_mart_endpoints(api: Api, openapi: dict[str, Any], path: str, table: str, key: str) -> None:
    with api.client(api.token(patient="p002")) as client:
        answer = client.get(path.lstrip("/"))
        mmol = client.get(path.lstrip("/"), params={"units": "mmol"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    validate(openapi, path, body)
    expected = published_rows(api.settings, f"select count(*) from marts.{table} where patient_id = 'p002'")[0][0]
    assert len(body) == expected > 0
    assert {r["patient_id"] for r in body} == {"p002"}
    assert [r[key] for r in body] == sorted(r[key] for r in body)
    hidden = {"ingested_at", "source_ingested_at", "site_id", "site_url", "device"}
    assert not hidden & set(body[0]), "bookkeeping columns must not be served"
    glucose = next(c for c in ("mean_glucose", "avg_glucose", "p50") if c in body[0])
    assert mmol.json()[0][glucose] == pytest.approx(body[0][glucose] / MGDL_PER_MMOLL, abs=0.005)


def test_daily_by_days(api: Api) -> None:
    day = a_day(api)
    with api.client(api.token(admin=True)) as client:
        one = client.get("api/v1/glucose/daily", params={"start": day.isoformat(), "end": day.isoformat()}).json()
        reversed_ = client.get("api/v1/glucose/daily", params={"start": day.isoformat(), "end": "2000-01-01"})
    assert {r["reading_date"] for r in one} == {day.isoformat()} and {r["patient_id"] for r in one} == {"p001", "p002"}
    assert reversed_.status_code == 422


def test_patients(api: Api, openapi: dict[str, Any]) -> None:
    with api.client(api.token(admin=True)) as client:
        admin = client.get("api/v1/patients").json()
    with api.client(api.token(patient="p002")) as client:
        own = client.get("api/v1/patients").json()
    validate(openapi, "/api/v1/patients", admin)
    assert [p["patient_id"] for p in admin] == ["p001", "p002"] and [p["patient_id"] for p in own] == ["p002"]
    newest = published_rows(
        api.settings, "select max(reading_ts_utc) from marts.fct_glucose_readings where patient_id = 'p002'"
    )
    assert datetime.fromisoformat(own[0]["newest_reading_at"]) == newest[0][0].replace(tzinfo=UTC)  # type: ignore[attr-defined]
    assert not {"site_url", "site_id"} & set(own[0])


def test_admin_reads_a_lake_ref(api: Api) -> None:
    from workbench.lakehouse import Lakehouse

    day = a_day(api)
    with api.client(api.token(admin=True)) as client:
        lake = client.get("api/v1/glucose/readings", params={"date": day.isoformat(), "patient": "p001", "ref": "main"})
        pg = client.get("api/v1/glucose/readings", params={"date": day.isoformat(), "patient": "p001"})
        unknown = client.get("api/v1/glucose/readings", params={"date": day.isoformat(), "ref": "no-such-branch"})
        commit = Lakehouse("main", settings=api.settings).log(limit=1)[0].id
        by_commit = client.get("api/v1/glucose/agp", params={"ref": commit, "patient": "p001"})
    assert lake.status_code == 200 and lake.headers["X-Data-Source"] == "lake@main"
    assert lake.json() == pg.json()
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    assert by_commit.status_code == 200 and len(by_commit.json()) > 0


def _all_pages(api: Api, token: str, params: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    readings: list[dict[str, Any]] = []
    pages = 0
    with api.client(token) as client:
        query = dict(params)
        while True:
            answer = client.get("api/v1/glucose/readings", params=query)
            assert answer.status_code == 200, answer.text
            readings += answer.json()
            pages += 1
            cursor = answer.headers.get("X-Next-Cursor")
            if cursor is None:
                return readings, pages
            assert cursor in answer.headers["Link"] and 'rel="next"' in answer.headers["Link"]
            query["cursor"] = cursor


def test_pagination_returns_every_reading_exactly_once(api: Api) -> None:
    first = published_rows(api.settings, "select min(reading_ts_utc) from marts.fct_glucose_readings")[0][0]
    start = first.replace(tzinfo=UTC)  # type: ignore[attr-defined]
    params = {"start": start.isoformat(), "end": (start + timedelta(days=31)).isoformat(), "limit": 500}
    readings, pages = _all_pages(api, api.token(admin=True), params)
    keys = [(r["patient_id"], r["reading_timestamp"]) for r in readings]
    expected = published_rows(api.settings, "select count(*) from marts.fct_glucose_readings")[0][0]
    assert len(keys) == len(set(keys)) == expected
    assert pages == math.ceil(expected / 500)  # type: ignore[operator]


@pytest.mark.slow
def test_pagination_is_stable_while_publishing(api: Api) -> None:
    """Re-publishing (a full swap of every table) while a client pages through: no reading is lost
    or repeated, and at least one swap happened in the middle of a pass."""
    from workbench.publish.publisher import load_config, publish_marts

    def publish_ids() -> set[object]:
        return {r[0] for r in published_rows(api.settings, "select publish_id from marts._cascade_publish")}

    expected = published_rows(api.settings, "select patient_id, reading_ts_utc from marts.fct_glucose_readings")
    expected_keys = {(p, t.replace(tzinfo=UTC)) for p, t in expected}  # type: ignore[attr-defined]
    failures: list[BaseException] = []

    def publisher() -> None:
        try:
            for _ in range(2):
                publish_marts("main", config=load_config(), settings=api.settings)
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    thread = threading.Thread(target=publisher)
    token = api.token(admin=True)
    first = min(t for _, t in expected_keys)
    params = {"start": first.isoformat(), "end": (first + timedelta(days=31)).isoformat(), "limit": 150}
    overlapped = 0
    thread.start()
    while thread.is_alive() or overlapped == 0:
        before = publish_ids()
        readings, _ = _all_pages(api, token, params)
        keys = [(r["patient_id"], datetime.fromisoformat(r["reading_timestamp"])) for r in readings]
        assert len(keys) == len(set(keys)), "a reading was served twice"
        assert set(keys) == expected_keys
        overlapped += publish_ids() != before
        if not thread.is_alive() and overlapped == 0:
            thread = threading.Thread(target=publisher)
            thread.start()
    thread.join()
    assert not failures, failures
    assert overlapped >= 1


def test_healthz_and_docs(api: Api) -> None:
    with api.client() as client:
        health = client.get("healthz")
        docs = client.get("docs")
    assert health.json() == {"status": "ok", "version": health.json()["version"], "database": "up"}
    assert docs.status_code == 200 and "/static-docs/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower(), "the API docs must work offline"


def test_metrics(api: Api) -> None:
    with api.client(api.token(admin=True)) as client:
        client.get("api/v1/patients")
        client.get("api/v1/glucose/readings", params={"date": "not-a-date"})
        text = client.get("metrics").text
    assert 'cascade_api_requests_total{method="GET",route="/api/v1/patients",status="200"}' in text
    assert 'cascade_api_request_seconds_bucket{le="0.05",route="/api/v1/patients"}' in text
    assert 'cascade_api_errors_total{kind="client",route="/api/v1/glucose/readings"}' in text
    ages = {
        line.split('"')[1]: float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("cascade_patient_data_age_seconds{")
    }
    assert set(ages) == {"p001", "p002"} and all(age >= 0 for age in ages.values())
