"""Validation rules: every document ends up valid (coerced) or rejected with a reason."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from workbench.ingest.validate import SiteContext, fallback_id, parse_iso_ms, split_entries, split_treatments

NOW = datetime.now(UTC)
T = int(time.time() * 1000) - 3_600_000


def ctx() -> SiteContext:
    return SiteContext("s1", "p1", "Europe/Berlin", ingested_at=NOW)


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ("not a document", "not_an_object"),
        ({"_id": "a", "date": T, "sgv": 100}, "invalid_type"),
        ({"_id": "a", "type": "SGV ", "date": T, "sgv": 100}, "invalid_type"),
        ({"_id": "a", "type": "sgv", "date": T}, "missing_sgv"),
        ({"_id": "a", "type": "sgv", "date": T, "sgv": None}, "missing_sgv"),
        ({"_id": "a", "type": "sgv", "date": T, "sgv": "LOW"}, "non_numeric_sgv"),
        ({"_id": "a", "type": "sgv", "date": T, "sgv": True}, "non_numeric_sgv"),
        ({"_id": "a", "type": "sgv", "date": T, "sgv": [1]}, "non_numeric_sgv"),
        ({"_id": "a", "type": "sgv", "date": T, "sgv": 1}, "sgv_error_code"),
        ({"_id": "a", "type": "sgv", "date": T, "sgv": 39}, "sgv_error_code"),
        ({"_id": "a", "type": "sgv", "date": T, "sgv": 401}, "sgv_out_of_range"),
        ({"_id": "a", "type": "sgv", "date": T, "sgv": -5}, "sgv_out_of_range"),
        ({"_id": "a", "type": "sgv", "date": "x", "dateString": "y", "sgv": 100}, "unparseable_date"),
        ({"_id": "a", "type": "sgv", "sgv": 100}, "unparseable_date"),
        ({"_id": "a", "type": "sgv", "date": T // 1000, "sgv": 100}, "implausible_date"),
        ({"_id": "a", "type": "sgv", "date": T + 86_400_000, "sgv": 100}, "future_date"),
        ({"_id": "a", "type": "sgv", "date": T, "sgv": 100, "direction": 3}, "wrong_field_type:direction"),
        ({"_id": "a", "type": "sgv", "date": T, "sgv": 100, "noise": "loud"}, "wrong_field_type:noise"),
        ({"_id": "a", "type": "mbg", "date": T}, "missing_mbg"),
        ({"_id": "a", "type": "mbg", "date": T, "mbg": "?"}, "non_numeric_mbg"),
        ({"_id": "a", "type": "mbg", "date": T, "mbg": 900}, "mbg_out_of_range"),
    ],
)
def test_bad_entries_are_rejected_with_reason_and_payload(doc: object, reason: str) -> None:
    valid, rejects = split_entries([doc], ctx())
    assert valid == []
    assert len(rejects) == 1
    row = rejects[0]
    assert row["reason"] == reason
    assert json.loads(row["payload"]) == doc
    assert row["patient_id"] == "p1" and row["site_id"] == "s1" and row["_ingested_at"] == NOW
    assert "date" not in row  # rejects never move the incremental cursor


def test_valid_entries_keep_every_field_and_get_stamped() -> None:
    docs = [
        {"_id": "a", "type": "sgv", "date": T, "sgv": 40, "direction": "Flat", "newThing": {"x": 1}},
        {"_id": "b", "type": "sgv", "date": str(T), "sgv": "250", "delta": "-2.5"},
        {"_id": "c", "type": "sgv", "dateString": "2026-01-01T10:00:00+01:00", "sgv": 99.6},
        {"_id": "d", "type": "mbg", "date": T, "mbg": 101},
        {"_id": "e", "type": "cal", "date": T, "slope": 850.5, "intercept": 30000, "scale": 1},
    ]
    valid, rejects = split_entries(docs, ctx())
    assert rejects == []
    a, b, c, d, e = valid
    assert a["newThing"] == {"x": 1} and a["direction"] == "Flat"
    assert b["date"] == T and b["sgv"] == 250 and b["delta"] == -2.5
    assert c["date"] == parse_iso_ms("2026-01-01T09:00:00Z") and c["sgv"] == 100
    assert d["mbg"] == 101.0 and e["slope"] == 850.5
    for row in valid:
        assert (row["patient_id"], row["patient_tz"], row["site_id"]) == ("p1", "Europe/Berlin", "s1")
    assert docs[1]["sgv"] == "250"  # the caller's documents are not modified


def test_missing_id_gets_the_documented_fallback_key() -> None:
    doc = {"type": "sgv", "date": T, "sgv": 120, "device": "dexcom"}
    (row,), _ = split_entries([dict(doc)], ctx())
    assert row["_id"] == fallback_id("sgv", T, "dexcom")
    again, _ = split_entries([dict(doc, sgv=121)], ctx())
    assert again[0]["_id"] == row["_id"]  # same reading time/type/device: same key
    other, _ = split_entries([dict(doc, date=T + 1)], ctx())
    assert other[0]["_id"] != row["_id"]


def test_treatments_get_a_date_from_created_at_and_bad_ones_are_rejected() -> None:
    docs = [
        {"_id": "t1", "eventType": "Meal Bolus", "created_at": "2026-11-01T10:00:00.000Z", "insulin": "2.5"},
        {"_id": "t2", "eventType": "Note", "created_at": "yesterday"},
        {"_id": "t3", "eventType": "Bolus", "created_at": "2026-11-01T10:00:00Z", "insulin": -1},
        {"_id": "t4", "eventType": 7, "created_at": "2026-11-01T10:00:00Z"},
        {"eventType": "Temp Basal", "created_at": "2026-11-01T11:00:00Z", "rate": 0.5, "duration": 30},
    ]
    valid, rejects = split_treatments(docs, ctx())
    assert [r["reason"] for r in rejects] == [
        "unparseable_date",
        "negative_value:insulin",
        "wrong_field_type:eventType",
    ]
    t1, t5 = valid
    assert t1["date"] == parse_iso_ms("2026-11-01T10:00:00Z") and t1["insulin"] == 2.5
    assert t5["_id"] == fallback_id("Temp Basal", "2026-11-01T11:00:00Z", None)
    assert t5["duration"] == 30.0
