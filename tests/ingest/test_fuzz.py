"""Fuzz suite (Hypothesis): generated Nightscout documents, field names, values and page sizes,
served by a real HTTP server and landed in the real lake, twice (the second run with more data).

Properties: nothing crashes a site; every valid document lands exactly once; every invalid one is
quarantined with its reason; every other generated document is accounted for exactly once (landed
or quarantined, never both, never lost).

Budget: `CASCADE_FUZZ_EXAMPLES` examples (10 in `make test`, about 100 s; `make fuzz` runs 100). Totals are
printed at the end (`-s`) and written to `CASCADE_FUZZ_REPORT` when set.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hostile import Behaviour, hostile_server, site_for
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from workbench.ingest.client import RetryPolicy
from workbench.ingest.validate import RESERVED_COLUMNS, column_name
from workbench.settings import get_settings

EXAMPLES = int(os.environ.get("CASCADE_FUZZ_EXAMPLES", "10"))
MINUTE = 60_000
TOTALS: Counter[str] = Counter()
KNOWN = {"_id", "type", "date", "sgv", "direction", "device", "noise", "delta", "date_string", "mbg", "sys_time"}

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
any_json = st.recursive(
    st.one_of(json_leaf, st.integers(), st.text(alphabet=st.characters(codec=None), max_size=6)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)
safe_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FFF, exclude_categories=("Cs",)), max_size=10),
)
safe_name = st.from_regex(r"[a-z][a-zA-Z0-9_]{0,8}", fullmatch=True).filter(
    lambda n: column_name(n) not in KNOWN | RESERVED_COLUMNS
)

INVALID: dict[str, str] = {
    "big_sgv": "integer_out_of_range",
    "big_extra": "integer_out_of_range",
    "surrogate": "invalid_unicode",
    "nul": "nul_character",
    "collide": "field_name_collision:date_string",
    "empty_name": "empty_field_name",
    "before_2006": "implausible_date",
    "future": "future_date",
    "error_code": "sgv_error_code",
    "too_high": "sgv_out_of_range",
}


@st.composite
def documents(draw: st.DrawFn, now: int) -> list[tuple[str, Any, str | None]]:
    """(kind, document, expected reject reason) — kind is valid, invalid, wild or non_object."""
    count = draw(st.integers(min_value=1, max_value=40))
    out: list[tuple[str, Any, str | None]] = []
    for i in range(count):
        date = now - (i + 1) * MINUTE - draw(st.integers(min_value=0, max_value=59_000))
        doc: dict[str, Any] = {
            "_id": f"fz-{i}",
            "type": "sgv",
            "date": date,
            "sgv": draw(st.integers(min_value=40, max_value=400)),
            "direction": draw(st.sampled_from(["Flat", "FortyFiveUp", "SingleDown", "NONE"])),
        }
        for name in draw(st.lists(safe_name, max_size=3, unique_by=column_name)):
            doc[name] = draw(safe_leaf)
        kind = draw(st.sampled_from(["valid"] * 5 + ["invalid"] * 3 + ["wild", "non_object"]))
        if kind == "valid":
            out.append(("valid", doc, None))
        elif kind == "invalid":
            mutation = draw(st.sampled_from(sorted(INVALID)))
            big = draw(st.one_of(st.integers(min_value=2**63), st.integers(max_value=-(2**63) - 1)))
            if mutation == "big_sgv":
                doc["sgv"] = big
            elif mutation == "big_extra":
                doc["extra_big"] = {"nested": [big]}
            elif mutation == "surrogate":
                doc["direction"] = "up" + chr(draw(st.integers(min_value=0xD800, max_value=0xDFFF)))
            elif mutation == "nul":
                doc["device"] = "dex\x00com"
            elif mutation == "collide":
                doc["dateString"], doc["date_string"] = "a", "b"
            elif mutation == "empty_name":
                doc[draw(st.sampled_from(["", " ", "\t"]))] = 1
            elif mutation == "before_2006":
                doc["date"] = draw(st.integers(min_value=0, max_value=1_136_073_599_999))
            elif mutation == "future":
                doc["date"] = now + draw(st.integers(min_value=6 * MINUTE, max_value=10**9))
            elif mutation == "error_code":
                doc["sgv"] = draw(st.integers(min_value=0, max_value=39))
            else:
                doc["sgv"] = draw(st.integers(min_value=401, max_value=5000))
            out.append(("invalid", doc, INVALID[mutation]))
        elif kind == "wild":  # anything at all in extra fields: either outcome, accounted once
            for name, value in draw(st.dictionaries(st.text(max_size=8), any_json, max_size=4)).items():
                if name not in doc:
                    doc[name] = value
            out.append(("wild", doc, None))
        else:
            out.append(
                (
                    "non_object",
                    draw(st.one_of(st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2))),
                    "not_an_object",
                )
            )
    return out


@pytest.fixture(scope="module", autouse=True)
def report_totals() -> Iterator[None]:
    yield
    line = ", ".join(f"{k} {TOTALS[k]}" for k in ("examples", "documents", "landed", "quarantined", "crashes"))
    print(f"\nfuzz totals: {line}")
    target = os.environ.get("CASCADE_FUZZ_REPORT")
    if target:
        Path(target).write_text(json.dumps(dict(TOTALS), indent=2))


def _raw(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=True)


@pytest.mark.timeout(max(900, 60 * EXAMPLES))  # two real ingests per example: `make fuzz` runs long
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: every example is two real ingests
)
@given(data=st.data())
def test_generated_documents_land_once_or_are_quarantined(data: st.DataObject, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.ingest.run import ingest
    from workbench.lakehouse import Lakehouse

    now = int(time.time() * 1000)
    docs = data.draw(documents(now))
    split = data.draw(st.integers(min_value=0, max_value=len(docs)))
    page_size = data.draw(st.integers(min_value=3, max_value=50))
    duplicate = data.draw(st.booleans())
    home = Path(tempfile.mkdtemp(prefix="cascade-fuzz-"))
    monkeypatch.setenv("CASCADE_HOME", str(home))
    monkeypatch.setenv("CASCADE_PROFILE", "embedded")
    get_settings.cache_clear()
    TOTALS["examples"] += 1
    TOTALS["documents"] += len(docs)
    try:
        # the first run sees the older documents, the second all (newest first: index 0 is newest)
        behaviour = Behaviour(entries=[_raw(d) for _, d, _ in docs[split:]])
        retry = RetryPolicy(attempts=2, base_seconds=0.01, max_seconds=0.02)
        with hostile_server(behaviour) as url:
            site = site_for(url, "fuzz")
            first = ingest(branch="dev", sites=[site], page_size=page_size, retry=retry, raise_on_failure=False)
            behaviour.entries = [_raw(d) for _, d, _ in docs] + ([_raw(docs[0][1])] if duplicate and docs else [])
            second = ingest(branch="dev", sites=[site], page_size=page_size, retry=retry, raise_on_failure=False)
        errors = [s.error for r in (first, second) for s in r.sites if s.error]
        TOTALS["crashes"] += len(errors)
        assert errors == []
        lh = Lakehouse("dev")
        tables = set(lh.tables())
        landed = (
            lh.sql("select _id from raw.glucose_entries")["_id"].tolist() if "raw.glucose_entries" in tables else []
        )
        rejects = (
            lh.sql("select _id, reason from raw.glucose_entries_rejects")
            if "raw.glucose_entries_rejects" in tables
            else None
        )
        reasons = dict(zip(rejects["_id"], rejects["reason"], strict=True)) if rejects is not None else {}
        assert len(landed) == len(set(landed)), "a document landed twice"
        landed_set = set(landed)
        for kind, doc, reason in docs:
            if kind == "non_object":
                continue
            _id = doc["_id"]
            if reason == "implausible_date" and _id not in reasons and _id not in landed_set:
                continue  # dated at or before the window's start (`$gt`): a date-window fetch never gets it
            if kind == "valid":
                assert _id in landed_set and _id not in reasons, (doc, reasons.get(_id))
            elif kind == "invalid":
                assert _id not in landed_set and reasons.get(_id) == reason, (doc, reasons.get(_id))
            else:
                assert (_id in landed_set) != (_id in reasons), doc
        # a date window serves undated documents only on a page with room left after the dated
        # ones (like a real server, which never serves them): each one served is quarantined once
        non_objects = {_raw(d) for kind, d, _ in docs if kind == "non_object"} & behaviour.served
        assert sum(1 for r in reasons.values() if r == "not_an_object") == len(non_objects)
        TOTALS["landed"] += len(landed_set)
        TOTALS["quarantined"] += len(reasons)
    finally:
        get_settings.cache_clear()
        shutil.rmtree(home, ignore_errors=True)
