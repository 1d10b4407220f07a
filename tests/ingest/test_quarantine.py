"""Quarantine, not failure; isolated sites; bounded fetches — against a real misbehaving server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hostile import Behaviour, entry, hostile_server, site_for
from ingest_helpers import count

from workbench.ingest.errors import FetchLimitError, SiteIngestError
from workbench.settings import get_settings

MINUTE = 60_000


def _now_ms() -> int:
    return int(time.time() * 1000)


def _valid(n: int, newest_ms: int, prefix: str = "ok") -> list[str]:
    return [entry(f"{prefix}-{i}", newest_ms - i * 5 * MINUTE, 100 + i) for i in range(n)]


def hostile_documents(now: int) -> dict[str, tuple[str, str]]:
    """id -> (raw JSON text, expected reject reason)."""
    t = now - 30 * MINUTE
    return {
        "big-sgv": (
            f'{{"_id":"big-sgv","type":"sgv","date":{t},"sgv":123456789012345678901234567890}}',
            "integer_out_of_range",
        ),
        "big-date": (f'{{"_id":"big-date","type":"sgv","date":{t}000000000000,"sgv":100}}', "integer_out_of_range"),
        "big-noise": (
            f'{{"_id":"big-noise","type":"sgv","date":{t},"sgv":100,"noise":99999999999999999999}}',
            "integer_out_of_range",
        ),
        "big-unknown": (
            f'{{"_id":"big-unknown","type":"sgv","date":{t},"sgv":100,"x":{{"y":[18446744073709551616]}}}}',
            "integer_out_of_range",
        ),
        "surrogate": (
            f'{{"_id":"surrogate","type":"sgv","date":{t},"sgv":100,"direction":"\\ud800"}}',
            "invalid_unicode",
        ),
        "bad-utf8": (f'{{"_id":"bad-utf8","type":"sgv","date":{t},"sgv":100,"device":"x\udcffy"}}', "invalid_unicode"),
        "nul": (f'{{"_id":"nul","type":"sgv","date":{t},"sgv":100,"device":"a\\u0000b"}}', "nul_character"),
        "collide": (
            f'{{"_id":"collide","type":"sgv","date":{t},"sgv":100,"dateString":"a","date_string":"b"}}',
            "field_name_collision:date_string",
        ),
        "empty-name": (f'{{"_id":"empty-name","type":"sgv","date":{t},"sgv":100,"":1}}', "empty_field_name"),
        "reserved": (
            f'{{"_id":"reserved","type":"sgv","date":{t},"sgv":100,"site_id":"other"}}',
            "reserved_field_name:site_id",
        ),
        "y2001": ('{"_id":"y2001","type":"sgv","date":978307200000,"sgv":100}', "implausible_date"),
        "future-9min": (f'{{"_id":"future-9min","type":"sgv","date":{now + 9 * MINUTE},"sgv":100}}', "future_date"),
    }


def test_bad_documents_are_quarantined_and_the_rest_lands_exactly_once(
    run_ingest: Callable[..., Any], lake: Callable[[], Any]
) -> None:
    now = _now_ms()
    bad = hostile_documents(now)
    behaviour = Behaviour(entries=_valid(20, now - MINUTE) + [raw for raw, _ in bad.values()])
    behaviour.treatments = [
        f'{{"_id":"t-ok","eventType":"Meal Bolus","created_at":"{_iso(now - 60 * MINUTE)}","insulin":2}}',
        f'{{"_id":"t-big","eventType":"Meal Bolus","created_at":"{_iso(now - 50 * MINUTE)}",'
        f'"insulin":1e999999,"carbs":{2**80}}}',
    ]
    with hostile_server(behaviour) as url:
        site = site_for(url)
        first = run_ingest([site]).sites[0]
        second = run_ingest([site]).sites[0]
    assert first.error is None and second.error is None
    lh = lake()
    assert count(lh, "raw.glucose_entries") == 20
    assert lh.sql("select count(distinct _id) as n from raw.glucose_entries")["n"].iloc[0] == 20
    rejects = lh.sql("select _id, reason, payload from raw.glucose_entries_rejects")
    assert dict(zip(rejects["_id"], rejects["reason"], strict=True)) == {k: r for k, (_, r) in bad.items()}
    payloads = dict(zip(rejects["_id"], rejects["payload"], strict=True))
    assert json.loads(payloads["big-sgv"])["sgv"] == 123456789012345678901234567890  # kept as sent
    assert first.new == 20 and second.new == 0 and second.new_rejects == 0
    assert count(lh, "raw.treatments") == 1
    assert lh.sql("select reason from raw.treatments_rejects")["reason"].tolist() == ["integer_out_of_range"]


def _iso(ms: int) -> str:
    from workbench.ingest.validate import iso_ms_from

    return iso_ms_from(ms)


def test_one_failing_site_never_stops_the_others(run_ingest: Callable[..., Any], lake: Callable[[], Any]) -> None:
    now = _now_ms()
    with (
        hostile_server(Behaviour(mode="fail")) as broken_url,
        hostile_server(Behaviour(entries=_valid(10, now - MINUTE))) as good_url,
    ):
        sites = [site_for(broken_url, "broken"), site_for(good_url, "good")]
        with pytest.raises(SiteIngestError) as info:
            run_ingest(sites)
        report = run_ingest(sites, raise_on_failure=False)
    message = str(info.value)
    assert "\n" not in message and "site broken" in message and "landed: good" in message
    assert "HTTP 500" in message
    assert count(lake(), "raw.glucose_entries", "site_id = 'good'") == 10
    assert [s.site_id for s in report.failed] == ["broken"]
    assert "broken (broken): FAILED" in report.summary()


def _plant_unlandable_package(home: Path, site_id: str, load_id: str) -> None:
    """A completed staged package whose data Iceberg cannot take (a column without a name)."""
    from workbench.ingest.stage import StageArea
    from workbench.settings import load_settings

    area = StageArea(load_settings(home=home), site_id, "dev")
    (area.root / "glucose_entries").mkdir(parents=True, exist_ok=True)
    (area.root / "_dlt_loads").mkdir(parents=True, exist_ok=True)
    table = pa.table({"_id": ["planted"], "site_id": [site_id], "": [1]})
    pq.write_table(table, area.root / "glucose_entries" / f"{load_id}.abc.parquet")
    (area.root / "_dlt_loads" / f"nightscout__{load_id}.jsonl").write_text("{}\n")


@pytest.mark.parametrize("full_resync", [False, True])
def test_a_package_that_cannot_land_is_quarantined_whole_and_never_blocks(
    run_ingest: Callable[..., Any], lake: Callable[[], Any], cascade_home: Path, full_resync: bool
) -> None:
    now = _now_ms()
    behaviour = Behaviour(entries=_valid(6, now - MINUTE))
    with hostile_server(behaviour) as url:
        site = site_for(url)
        run_ingest([site])
        _plant_unlandable_package(cascade_home, site.site_id, "1700000000.5")
        report = run_ingest([site], full_resync=full_resync)
        (s,) = report.sites
        assert s.error is None and list(s.quarantined) == ["1700000000.5"]
        assert "cannot be landed" in s.quarantined["1700000000.5"]
        assert "quarantined" in report.summary()
        behaviour.entries += _valid(3, now, prefix="later")
        again = run_ingest([site], full_resync=full_resync).sites[0]
    assert again.error is None and again.quarantined == {}
    assert count(lake(), "raw.glucose_entries") == 9
    kept = list((cascade_home / "stage" / "_quarantine").rglob("1700000000.5.abc.parquet"))
    assert len(kept) == 1  # still there to inspect


def test_a_server_ignoring_the_window_is_asked_a_bounded_number_of_times(
    run_ingest: Callable[..., Any], lake: Callable[[], Any]
) -> None:
    now = _now_ms()
    behaviour = Behaviour(entries=_valid(20, now - MINUTE), mode="ignore_lte")
    with hostile_server(behaviour) as url:
        report = run_ingest([site_for(url)], page_size=5)
    (s,) = report.sites
    assert s.error is None
    assert behaviour.requests <= 4  # entries: the first page and one repeat; treatments: one page
    assert any("ignores $lte" in n for n in s.notes)
    assert count(lake(), "raw.glucose_entries") == 5  # what the server would give, exactly once


def test_the_per_site_deadline_is_a_clear_error(
    run_ingest: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASCADE_INGEST_DEADLINE_SECONDS", "1.5")
    get_settings.cache_clear()
    expected = "per-site deadline of 1.5 s.*CASCADE_INGEST_DEADLINE_SECONDS"
    with (
        hostile_server(Behaviour(entries=_valid(3, _now_ms()), mode="trickle")) as url,
        pytest.raises(FetchLimitError, match=expected),
    ):
        run_ingest([site_for(url)])


def test_a_gzip_bomb_is_a_clear_error(run_ingest: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASCADE_INGEST_MAX_RESPONSE_MB", "5")
    get_settings.cache_clear()
    expected = "more than 5 MB in one response.*CASCADE_INGEST_MAX_RESPONSE_MB"
    with (
        hostile_server(Behaviour(mode="bomb", bomb_bytes=60_000_000)) as url,
        pytest.raises(FetchLimitError, match=expected),
    ):
        run_ingest([site_for(url)])


def test_a_corrected_document_is_an_update_with_the_old_version_in_time_travel(
    run_ingest: Callable[..., Any], lake: Callable[[], Any]
) -> None:
    from workbench.lakehouse import Lakehouse

    now = _now_ms()
    t_bolus = _iso(now - 40 * MINUTE)
    behaviour = Behaviour(
        entries=_valid(5, now - MINUTE),
        treatments=[f'{{"_id":"t1","eventType":"Meal Bolus","created_at":"{t_bolus}","insulin":2,"carbs":30}}'],
    )
    with hostile_server(behaviour) as url:
        site = site_for(url)
        run_ingest([site])
        before = lake().log(limit=1)[0].id
        # the user edits a treatment and a reading is re-sent with a corrected value (same _id)
        behaviour.treatments = [
            f'{{"_id":"t1","eventType":"Meal Bolus","created_at":"{t_bolus}","insulin":2,"carbs":45}}'
        ]
        behaviour.entries[2] = entry("ok-2", now - MINUTE - 10 * MINUTE, 222)
        second = run_ingest([site]).sites[0]
        third = run_ingest([site]).sites[0]  # nothing changed again: nothing written
    assert second.updated == 1 and second.treatments_updated == 1 and second.new == 0
    assert third.updated == 0 and third.treatments_updated == 0
    lh = lake()
    assert count(lh, "raw.glucose_entries") == 5 and count(lh, "raw.treatments") == 1
    assert lh.sql("select sgv from raw.glucose_entries where _id = 'ok-2'")["sgv"].tolist() == [222]
    assert lh.sql("select carbs from raw.treatments where _id = 't1'")["carbs"].tolist() == [45.0]
    messages = [c.message for c in lh.log(limit=10)]
    assert any("raw.treatments" in m and "1 updated" in m for m in messages)
    assert any("raw.glucose_entries" in m and "1 updated" in m for m in messages)
    old = Lakehouse(before)
    assert old.sql("select carbs from raw.treatments where _id = 't1'")["carbs"].tolist() == [30.0]
    assert old.sql("select sgv from raw.glucose_entries where _id = 'ok-2'")["sgv"].tolist() == [102]


def test_an_extra_field_typed_differently_on_each_page_lands(
    run_ingest: Callable[..., Any], lake: Callable[[], Any]
) -> None:
    # found by the fuzz suite: dlt refused to concatenate pages whose Arrow types differ
    now = _now_ms()
    values = [-1.29e87, "text", None]
    docs = [entry(f"p-{i}", now - (i + 1) * MINUTE, 100, extra=values[i % 3]) for i in range(12)]
    with hostile_server(Behaviour(entries=docs)) as url:
        (site,) = run_ingest([site_for(url)], page_size=3).sites
    assert site.error is None
    assert count(lake(), "raw.glucose_entries") == 12
