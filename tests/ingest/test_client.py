"""The HTTP client: paging by date windows loses nothing, retries, one-line errors."""

from __future__ import annotations

import pytest
from ingest_helpers import FAST_RETRY, SECRET, SECRET_ENV, make_site

from workbench.demo.server import DemoServer
from workbench.ingest.client import NightscoutClient
from workbench.ingest.errors import NightscoutAuthError, NightscoutUnavailableError
from workbench.ingest.sites import Site


@pytest.fixture(autouse=True)
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)


def test_small_pages_return_every_document_once_even_with_ties(demo: DemoServer) -> None:
    patient = demo.control.dataset.patient("p001")
    assert patient is not None
    newest = int(patient.dates[patient.dates <= demo.control.dataset.visible_until].max())
    # three documents sharing one millisecond exactly at a page boundary
    for k in range(3):
        patient.extra_entries.append(
            {"_id": f"tie{k}", "type": "sgv", "sgv": 100, "date": newest - 7 * 300_000 - 1, "_serve_date": 0}
        )
        patient.extra_entries[-1]["_serve_date"] = patient.extra_entries[-1]["date"]
    patient.extra_entries.sort(key=lambda d: d["_serve_date"])
    with NightscoutClient(make_site(demo), page_size=1000, retry=FAST_RETRY) as client:
        big = [d["_id"] for page in client.pages("/api/v1/entries.json", "date", 0) for d in page]
    with NightscoutClient(make_site(demo), page_size=8, retry=FAST_RETRY) as client:
        small = [d["_id"] for page in client.pages("/api/v1/entries.json", "date", 0) for d in page]
        assert client.stats.requests > 50
    assert set(small) == set(big) and {"tie0", "tie1", "tie2"} <= set(small)
    # the server serves some documents twice; paging itself adds no extra copies
    assert len(small) == len(big)


def test_since_is_exclusive(demo: DemoServer) -> None:
    with NightscoutClient(make_site(demo), retry=FAST_RETRY) as client:
        docs = [d for p in client.pages("/api/v1/entries/sgv.json", "date", 0) for d in p]
        pivot = sorted(d["date"] for d in docs)[-5]
        newer = [d for p in client.pages("/api/v1/entries/sgv.json", "date", pivot) for d in p]
    assert sorted({d["date"] for d in newer}) == sorted({d["date"] for d in docs if d["date"] > pivot})


def test_429_with_retry_after_and_503_are_retried(demo: DemoServer) -> None:
    demo.control.fail_next(times=1, status=429)
    demo.control.fail_next(times=1, status=503)
    with NightscoutClient(make_site(demo), retry=FAST_RETRY) as client:
        assert client.get_json("/api/v1/status.json")["status"] == "ok"
        assert client.stats.retries == 2


def test_connection_refused_is_retried_then_one_clear_error() -> None:
    site = Site(site_id="gone", patient_id="p", url="http://127.0.0.1:9", secret=SECRET)
    with NightscoutClient(site, retry=FAST_RETRY) as client, pytest.raises(NightscoutUnavailableError) as info:
        client.get_json("/api/v1/status.json")
    assert "http://127.0.0.1:9" in str(info.value) and "4 attempts" in str(info.value)


def test_token_auth_and_a_wrong_token_names_the_site_not_the_token(
    demo: DemoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.demo.server import token_for

    monkeypatch.setenv("NIGHTSCOUT_TOKEN", token_for(SECRET))
    site = make_site(demo, auth="token", secret_env="NIGHTSCOUT_TOKEN")
    with NightscoutClient(site, retry=FAST_RETRY) as client:
        assert client.get_json("/api/v1/status.json")["status"] == "ok"
    monkeypatch.setenv("NIGHTSCOUT_TOKEN", "cascade-0123456789abcdef")
    with NightscoutClient(site, retry=FAST_RETRY) as client, pytest.raises(NightscoutAuthError) as info:
        client.get_json("/api/v1/entries.json")
    assert "cascade-0123456789abcdef" not in str(info.value) and site.url in str(info.value)
    assert client.stats.requests == 1  # 401 is not retried
