"""Contract: refs, log, atomic multi-table merge, conflicts, reset, tags, zero-copy branches — per profile."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.contract.conftest import warehouse_files
from workbench.errors import MergeConflictError, ReadOnlyRefError, RefError, RefNotFoundError
from workbench.lakehouse import Lakehouse


def _rows(n: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"id": range(start, start + n), "v": [float(i) for i in range(start, start + n)]})


def _count(lh: Lakehouse, table: str) -> int:
    return int(lh.sql(f"select count(*) as n from {table}")["n"][0])


def test_main_and_dev_exist_with_layer_namespaces(lh: Lakehouse) -> None:
    refs = {r.name: r.kind for r in lh.refs()}
    assert refs == {"main": "branch", "dev": "branch"}
    namespaces = {ns[0] for ns in lh.lake.catalog("main").list_namespaces()}
    assert {"raw", "bronze", "silver", "gold", "marts", "ops"} <= namespaces
    assert lh.tables() == []


def test_writes_on_dev_are_invisible_on_main_until_merge(lh: Lakehouse) -> None:
    lh.write("raw.a", _rows(10), message="load a")
    main = lh.checkout("main")
    assert "raw.a" not in main.tables()
    assert lh.merge("dev", into="main") is not None
    assert _count(main, "raw.a") == 10
    lh.write("raw.a", _rows(5, 10))
    assert (_count(lh, "raw.a"), _count(main, "raw.a")) == (15, 10)
    lh.merge("dev", into="main")
    assert _count(main, "raw.a") == 15
    assert lh.merge("dev", into="main") is None  # nothing left to merge


def test_merge_moves_every_table_in_one_commit(lh: Lakehouse) -> None:
    lh.write("raw.a", _rows(2))
    lh.write("raw.b", _rows(3))
    lh.write("silver.c", _rows(4))
    before = lh.checkout("main").log(limit=1)[0].id
    commit = lh.merge("dev", into="main", message="promote three tables")
    main = lh.checkout("main")
    head = main.log(limit=1)[0]
    assert head.id == commit and head.message == "promote three tables"
    assert head.parent_id == before  # one commit on main, not three
    assert set(head.tables) == {"raw.a", "raw.b", "silver.c"}
    assert main.tables() == ["raw.a", "raw.b", "silver.c"]


def test_new_branch_is_zero_copy(lh: Lakehouse, lake_settings) -> None:  # type: ignore[no-untyped-def]
    lh.write("raw.a", _rows(1000))
    lh.write("raw.b", _rows(10))
    before = warehouse_files(lake_settings)
    lh.branch("feature/x-1.2", from_ref="dev")  # '/', '-' and '.' in names work
    assert warehouse_files(lake_settings) == before
    feature = lh.checkout("feature/x-1.2")
    assert feature.tables() == ["raw.a", "raw.b"]
    assert lh.lake.state("feature/x-1.2") == lh.lake.state("dev")  # the same table versions
    assert _count(feature, "raw.a") == 1000


def test_branch_and_tag_from_tag_or_commit(lh: Lakehouse) -> None:
    lh.write("raw.a", _rows(3))
    first = lh.log(limit=1)[0].id
    lh.write("raw.a", _rows(3, 3))
    lh.tag("v1", from_ref=first)
    assert _count(lh.checkout("v1"), "raw.a") == 3
    assert _count(lh.checkout(first), "raw.a") == 3
    lh.branch("from-tag", from_ref="v1")
    lh.checkout("from-tag").write("raw.a", _rows(1, 100))
    assert _count(lh.checkout("from-tag"), "raw.a") == 4
    assert _count(lh.checkout("v1"), "raw.a") == 3  # tags never move
    with pytest.raises(ReadOnlyRefError):
        lh.checkout("v1").write("raw.a", _rows(1))
    with pytest.raises(ReadOnlyRefError):
        lh.checkout(first).write("raw.a", _rows(1))
    with pytest.raises(RefError):
        lh.tag("v1")  # duplicate name


def test_log_records_author_message_and_tables(lh: Lakehouse) -> None:
    r1 = lh.write("raw.a", _rows(2), message="first load")
    r2 = lh.write("raw.b", _rows(2), message="second load")
    log = lh.log()
    assert [c.id for c in log[:2]] == [r2.commit_id, r1.commit_id]
    assert [c.message for c in log[:2]] == ["second load", "first load"]
    assert log[0].tables == ("raw.b",) and log[1].tables == ("raw.a",)
    assert log[0].author == lh.settings.author
    assert log[0].parent_id == log[1].id
    assert log[-1].message == "initialize lake"


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
    lh.merge("main", into="dev")  # merging main back brings main's change to dev
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
        lh.checkout("tmp")


def test_invalid_ref_names_are_refused(lh: Lakehouse) -> None:
    for bad in ("", "has space", "-dash", "x;drop"):
        with pytest.raises(RefError):
            lh.branch(bad)


def test_commits_between_lists_commits_with_their_tables(lh: Lakehouse) -> None:
    from datetime import UTC, datetime, timedelta

    start = datetime.now(UTC) - timedelta(seconds=1)
    r = lh.write("raw.a", _rows(2), message="in window")
    merged = lh.merge("dev", into="main")
    found = lh.lake.commits_between(start, datetime.now(UTC) + timedelta(seconds=1))
    ids = [c.id for c, _ in found]
    assert r.commit_id in ids and merged in ids
    changes = dict(found)[next(c for c, _ in found if c.id == r.commit_id)]
    assert list(changes) == ["raw.a"] and changes["raw.a"] == lh.lake.state("dev")["raw.a"]
