"""Branches, tags, merges, resets and the commit log (Nessie semantics) on the embedded lake."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from workbench.errors import MergeConflictError, ReadOnlyRefError, RefError, RefNotFoundError
from workbench.lakehouse import Lakehouse


def _rows(n: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"id": range(start, start + n), "v": [float(i) for i in range(start, start + n)]})


def _count(lh: Lakehouse, table: str) -> int:
    return int(lh.sql(f"select count(*) as n from {table}")["n"][0])


def test_main_and_dev_exist_with_layer_namespaces(lh: Lakehouse) -> None:
    refs = {r.name: r.kind for r in lh.refs()}
    assert refs == {"main": "branch", "dev": "branch"}
    catalog = lh.lake.catalog("main")
    namespaces = {ns[0] for ns in catalog.list_namespaces()}
    assert {"raw", "bronze", "silver", "gold", "marts"} <= namespaces


def test_writes_on_dev_are_invisible_on_main_until_merge(lh: Lakehouse) -> None:
    lh.write("raw.a", _rows(10), message="load a")
    main = lh.checkout("main")
    assert "raw.a" not in main.tables()
    commit = lh.merge("dev", into="main")
    assert commit is not None
    assert _count(main, "raw.a") == 10
    lh.write("raw.a", _rows(5, 10))
    assert _count(lh, "raw.a") == 15
    assert _count(main, "raw.a") == 10
    lh.merge("dev", into="main")
    assert _count(main, "raw.a") == 15
    assert lh.merge("dev", into="main") is None  # nothing left to merge


def test_new_branch_is_zero_copy(lh: Lakehouse, cascade_home: Path) -> None:
    lh.write("raw.a", _rows(1000))
    lh.write("raw.b", _rows(10))
    before = sorted(p for p in (cascade_home / "warehouse").rglob("*") if p.is_file())
    lh.branch("feature", from_ref="dev")
    after = sorted(p for p in (cascade_home / "warehouse").rglob("*") if p.is_file())
    assert before == after
    feature = lh.checkout("feature")
    assert feature.tables() == ["raw.a", "raw.b"]
    assert feature.table("raw.a").metadata_location == lh.table("raw.a").metadata_location


def test_branch_and_tag_from_tag_or_commit(lh: Lakehouse) -> None:
    lh.write("raw.a", _rows(3))
    first = lh.log(limit=1)[0].id
    lh.write("raw.a", _rows(3, 3))
    lh.tag("v1", from_ref=first)
    assert _count(lh.checkout("v1"), "raw.a") == 3
    assert _count(lh.checkout(first[:8]), "raw.a") == 3
    lh.branch("from-tag", from_ref="v1")
    lh.checkout("from-tag").write("raw.a", _rows(1, 100))
    assert _count(lh.checkout("from-tag"), "raw.a") == 4
    assert _count(lh.checkout("v1"), "raw.a") == 3  # tags never move
    with pytest.raises(ReadOnlyRefError):
        lh.checkout("v1").write("raw.a", _rows(1))
    with pytest.raises(RefError):
        lh.tag("v1")  # duplicate name


def test_log_records_author_message_and_tables(lh: Lakehouse) -> None:
    lh.write("raw.a", _rows(2), message="first load")
    lh.write("raw.b", _rows(2))
    log = lh.log()
    assert [c.message for c in log][:2] == ["create raw.b (+2 rows, 2 in all)", "first load"]
    assert log[0].tables == ("raw.b",) and log[1].tables == ("raw.a",)
    assert log[0].author == lh.settings.author
    assert log[-1].operation == "init"
    assert log[0].parent_id == log[1].id


def test_merge_conflict_names_tables_and_changes_nothing(lh: Lakehouse) -> None:
    lh.write("raw.a", _rows(2))
    lh.write("raw.b", _rows(2))
    lh.merge("dev", into="main")
    main = lh.checkout("main")
    main.write("raw.a", _rows(1, 50))  # main moves on raw.a
    lh.write("raw.a", _rows(1, 60))  # dev too -> conflict on raw.a
    lh.write("raw.b", _rows(1, 70))  # dev only -> would merge cleanly
    head_before = main.log(limit=1)[0].id
    with pytest.raises(MergeConflictError) as err:
        lh.merge("dev", into="main")
    assert err.value.tables == ["raw.a"]
    assert "raw.a" in str(err.value)
    assert main.log(limit=1)[0].id == head_before
    assert _count(main, "raw.b") == 2  # the clean table was not merged either


def test_merge_takes_non_conflicting_changes_from_both_sides(lh: Lakehouse) -> None:
    lh.write("raw.a", _rows(2))
    lh.write("raw.b", _rows(2))
    lh.merge("dev", into="main")
    main = lh.checkout("main")
    main.write("raw.a", _rows(1, 50))
    lh.write("raw.b", _rows(1, 70))
    lh.merge("dev", into="main")
    assert _count(main, "raw.a") == 3 and _count(main, "raw.b") == 3
    # merging main back into dev brings main's change to dev
    lh.merge("main", into="dev")
    assert _count(lh, "raw.a") == 3


def test_reset_branch_to_earlier_commit(lh: Lakehouse) -> None:
    lh.write("raw.a", _rows(2))
    keep = lh.log(limit=1)[0].id
    lh.write("raw.a", _rows(2, 2))
    lh.write("raw.b", _rows(2))
    lh.reset("dev", keep)
    assert lh.tables() == ["raw.a"]
    assert _count(lh, "raw.a") == 2
    assert lh.log(limit=1)[0].id == keep


def test_delete_branch_and_tag_but_never_main(lh: Lakehouse) -> None:
    lh.branch("tmp")
    lh.tag("t1")
    lh.lake.delete_branch("tmp")
    lh.lake.delete_tag("t1")
    names = {r.name for r in lh.refs()}
    assert "tmp" not in names and "t1" not in names
    with pytest.raises(RefError, match="main"):
        lh.lake.delete_branch("main")
    with pytest.raises(RefNotFoundError):
        lh.lake.delete_branch("tmp")
    with pytest.raises(RefNotFoundError):
        Lakehouse("tmp")


def test_invalid_ref_names_are_refused(lh: Lakehouse) -> None:
    for bad in ("", "has space", "-dash", "x;drop"):
        with pytest.raises(RefError):
            lh.branch(bad)
