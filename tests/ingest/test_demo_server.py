"""The demo Nightscout server: deterministic data and Nightscout v1 query semantics over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import numpy as np
import pytest
from ingest_helpers import END, SECRET

from workbench.demo.server import DemoServer, hash_secret, token_for
from workbench.demo.simulate import DemoDataset


def get(server: DemoServer, path: str, **params: object) -> httpx.Response:
    return httpx.get(server.site_url("p001") + path, params=params, headers={"api-secret": hash_secret(SECRET)})


def test_same_seed_same_data_other_seed_other_data() -> None:
    a = DemoDataset(seed=3, patients=2, days=2, end=END)
    b = DemoDataset(seed=3, patients=2, days=2, end=END)
    c = DemoDataset(seed=4, patients=2, days=2, end=END)
    for pa, pb in zip(a.members, b.members, strict=True):
        assert np.array_equal(pa.sgv, pb.sgv) and list(pa.ids) == list(pb.ids)
        assert pa.treatments == pb.treatments and pa.extra_entries == pb.extra_entries
    assert not np.array_equal(a.members[0].sgv[:500], c.members[0].sgv[:500])
    assert not np.array_equal(a.members[0].sgv[:500], a.members[1].sgv[:500])


def test_simulation_is_physiologically_plausible() -> None:
    patient = DemoDataset(seed=11, patients=1, days=20, end=END).members[0]
    sgv = patient.sgv
    assert sgv.min() >= 40 and sgv.max() <= 400
    assert 90 < sgv.mean() < 200 and 15 < sgv.std() < 90
    steps = np.diff(patient.dates)
    assert (steps % 300_000 == 0).all() and (steps > 300_000).any()  # 5-minute grid with gaps
    kinds = {t["eventType"] for t in patient.treatments}
    assert {"Meal Bolus", "Sensor Start", "Exercise"} <= kinds
    hours = (patient.dates // 3_600_000) % 24
    assert len(np.unique(hours)) == 24


def test_entries_are_newest_first_with_count_and_date_filters(demo: DemoServer) -> None:
    docs = get(demo, "/api/v1/entries.json", count=50).json()
    assert len(docs) == 50
    dates = [d["date"] for d in docs]
    assert dates == sorted(dates, reverse=True)
    assert len(get(demo, "/api/v1/entries.json").json()) == 10  # Nightscout's default count
    pivot = dates[20]
    gt = get(demo, "/api/v1/entries.json", **{"find[date][$gt]": pivot, "count": 1000}).json()
    gte = get(demo, "/api/v1/entries.json", **{"find[date][$gte]": pivot, "count": 1000}).json()
    assert min(d["date"] for d in gt) > pivot and min(d["date"] for d in gte) == pivot
    lte = get(demo, "/api/v1/entries.json", **{"find[date][$lte]": pivot, "count": 5}).json()
    lt = get(demo, "/api/v1/entries.json", **{"find[date][$lt]": pivot, "count": 5}).json()
    assert lte[0]["date"] == pivot and lt[0]["date"] < pivot
    sgv_only = get(demo, "/api/v1/entries/sgv.json", count=5000).json()
    assert sgv_only and {d["type"] for d in sgv_only} == {"sgv"}
    all_types = {d.get("type") for d in get(demo, "/api/v1/entries.json", count=5000).json()}
    assert {"sgv", "mbg", "cal"} <= all_types


def test_treatments_filter_on_created_at(demo: DemoServer) -> None:
    docs = get(demo, "/api/v1/treatments.json", count=1000).json()
    assert docs and [d["created_at"] for d in docs] == sorted((d["created_at"] for d in docs), reverse=True)
    pivot = docs[len(docs) // 2]["created_at"]
    newer = get(demo, "/api/v1/treatments.json", **{"find[created_at][$gt]": pivot, "count": 1000}).json()
    assert newer and all(d["created_at"] > pivot for d in newer)
    assert len(newer) == len(docs) // 2
    status = get(demo, "/api/v1/status.json").json()
    assert status["status"] == "ok" and status["settings"]["units"] == "mg/dl"
    assert get(demo, "/api/v1/devicestatus.json", count=3).status_code == 200


def test_auth_by_hashed_secret_or_token_else_401(demo: DemoServer) -> None:
    url = demo.site_url("p001") + "/api/v1/entries.json"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"api-secret": SECRET}).status_code == 401  # must be hashed
    assert httpx.get(url, headers={"api-secret": hash_secret(SECRET)}).status_code == 200
    assert httpx.get(url, params={"token": token_for(SECRET)}).status_code == 200
    assert httpx.get(url, params={"token": "nope"}).status_code == 401


def test_hooks_fail_advance_and_new_field(demo: DemoServer) -> None:
    demo.control.fail_next(times=1, status=503)
    assert get(demo, "/api/v1/entries.json").status_code == 503
    assert get(demo, "/api/v1/entries.json").status_code == 200
    newest = get(demo, "/api/v1/entries/sgv.json", count=1).json()[0]["date"]
    demo.control.advance(30)
    assert get(demo, "/api/v1/entries/sgv.json", count=1).json()[0]["date"] > newest
    demo.control.add_field("pumpIob", 1.5)
    assert get(demo, "/api/v1/entries.json", count=1).json()[0]["pumpIob"] == 1.5


@pytest.mark.parametrize("patient", ["p001", "p002"])
def test_each_patient_is_its_own_site(demo: DemoServer, patient: str) -> None:
    member = demo.control.dataset.patient(patient)
    assert member is not None
    url = demo.site_url(patient) + "/api/v1/entries/sgv.json"
    docs = httpx.get(url, params={"count": 3}, headers={"api-secret": hash_secret(SECRET)}).json()
    assert docs[0]["_id"] in set(member.ids)
    assert datetime.fromtimestamp(docs[0]["date"] / 1000, UTC) <= END
