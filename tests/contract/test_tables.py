"""Contract: writes, schema evolution, time travel, SQL on a ref, metadata tables — per profile."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pytest

from workbench.errors import QueryError, SchemaError, TableNotFoundError, WriteError
from workbench.lakehouse import Lakehouse


def _df(ids: list[int], v: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "v": [v] * len(ids)})


def _rows(lh: Lakehouse, table: str) -> list[tuple]:
    return [tuple(r.values()) for r in lh.sql_arrow(f"select * from {table} order by 1, 2").to_pylist()]


def test_each_write_is_one_commit_with_its_message(lh: Lakehouse) -> None:
    r1 = lh.write("raw.t", _df([1, 2]), message="load one")
    r2 = lh.write("raw.t", _df([3]), message="load two")
    log = lh.log(limit=2)
    assert [c.id for c in log] == [r2.commit_id, r1.commit_id]
    assert [c.message for c in log] == ["load two", "load one"]
    assert (r1.rows_written, r2.rows_written) == (2, 1)


def test_overwrite_upsert_insert_new(lh: Lakehouse) -> None:
    lh.write("raw.t", _df([1, 2, 3, 4]))
    r = lh.write("raw.t", _df([10], 2.0), mode="overwrite", where="id >= 3")
    assert r.rows_deleted == 2
    assert _rows(lh, "raw.t") == [(1, 1.0), (2, 1.0), (10, 2.0)]
    r = lh.write("raw.t", pd.DataFrame({"id": [2, 4, 4], "v": [9.0, 8.0, 7.0]}), mode="upsert", key="id")
    assert r.rows_deleted == 1
    assert _rows(lh, "raw.t") == [(1, 1.0), (2, 9.0), (4, 7.0), (10, 2.0)]
    r = lh.write("raw.t", _df([4, 5, 5], 5.0), mode="insert_new", key="id")
    assert (r.rows_written, r.rows_skipped) == (1, 2)
    again = lh.write("raw.t", _df([4, 5], 5.0), mode="insert_new", key="id")
    assert (again.rows_written, again.commit_id) == (0, None)
    assert len(_rows(lh, "raw.t")) == 5


def test_schema_evolution_adds_and_promotes_never_drops(lh: Lakehouse) -> None:
    lh.write("raw.t", pa.table({"id": pa.array([1], pa.int32()), "v": [1.0]}))
    lh.write("raw.t", pd.DataFrame({"id": [2], "v": [2.0], "extra": ["new"]}))
    lh.write("raw.t", pa.table({"id": pa.array([2**40], pa.int64())}))  # int -> long; v, extra missing
    frame = lh.sql("select id, v, extra from raw.t order by id")
    assert frame["id"].tolist() == [1, 2, 2**40]
    assert frame["extra"].tolist()[1] == "new" and pd.isna(frame["v"][2])
    assert [f.name for f in lh.table("raw.t").schema().fields] == ["id", "v", "extra"]
    with pytest.raises(SchemaError, match="id"):
        lh.write("raw.t", pd.DataFrame({"id": ["not a number"]}))
    assert int(lh.sql("select count(*) as n from raw.t")["n"][0]) == 3


def test_bad_writes_are_clear_errors(lh: Lakehouse) -> None:
    with pytest.raises(WriteError, match="key"):
        lh.write("raw.t", _df([1]), mode="upsert")
    with pytest.raises(WriteError, match="namespace.table"):
        lh.write("t", _df([1]))


def test_sql_on_a_ref_sees_schema_qualified_tables(lh: Lakehouse) -> None:
    lh.write("raw.a", pd.DataFrame({"id": [1, 2]}))
    lh.write("silver.b", pd.DataFrame({"id": [2, 3]}))
    assert lh.session.tables() == ["raw.a", "silver.b"]
    assert int(lh.sql("select sum(id) as s from raw.a join silver.b using (id)")["s"][0]) == 2
    lh.merge("dev", into="main")
    lh.write("raw.a", pd.DataFrame({"id": [5]}))  # a session on dev sees its branch move
    assert int(lh.sql("select count(*) as n from raw.a")["n"][0]) == 3
    main = lh.checkout("main")
    assert int(main.sql("select count(*) as n from raw.a")["n"][0]) == 2
    with pytest.raises(TableNotFoundError, match="raw.nope"):
        lh.sql("select * from raw.nope")
    with pytest.raises(QueryError) as err:
        lh.sql("selec 1")
    assert "\n" not in str(err.value)


def test_time_travel_by_version_and_timestamp(lh: Lakehouse) -> None:
    lh.write("raw.a", pd.DataFrame({"id": [1]}))
    first = int(lh.history("raw.a")["snapshot_id"].iloc[-1])
    time.sleep(1.1)  # Trino and Nessie keep times in milliseconds
    between = datetime.now(UTC)
    time.sleep(1.1)
    lh.write("raw.a", pd.DataFrame({"id": [2, 3]}))
    assert len(lh.history("raw.a")) == 2
    assert lh.sql(f"select count(*) as n from raw.a for version as of {first}")["n"][0] == 1
    stamp = between.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    assert lh.sql(f"select count(*) as n from raw.a for timestamp as of timestamp '{stamp}'")["n"][0] == 1
    assert len(lh.at("raw.a", as_of=between)) == 1
    assert len(lh.at("raw.a", snapshot_id=first)) == 1
    assert len(Lakehouse("dev", settings=lh.settings, as_of=between).sql("select * from raw.a")) == 1
    assert lh.sql("select count(*) as n from raw.a")["n"][0] == 3
    with pytest.raises(QueryError, match="no snapshot"):
        lh.sql("select * from raw.a for version as of 42")


def test_metadata_tables(lh: Lakehouse) -> None:
    lh.write("raw.a", pd.DataFrame({"id": [1]}))
    lh.write("raw.a", pd.DataFrame({"id": [2]}))
    assert len(lh.sql('select * from raw."a$files"')) == 2
    assert len(lh.sql('select snapshot_id from raw."a$snapshots"')) >= 1
    assert len(lh.sql('select * from raw."a$history"')) >= 1


def test_drop_table_is_a_commit(lh: Lakehouse) -> None:
    lh.write("raw.a", pd.DataFrame({"id": [1]}))
    commit = lh.drop("raw.a", message="drop a")
    assert lh.tables() == []
    head = lh.log(limit=1)[0]
    assert (head.id, head.message) == (commit, "drop a")


def test_results_keep_the_tables_types_when_empty_or_null(lh: Lakehouse) -> None:
    """A reader gets the table's types even from no rows or all-NULL columns (what gets written back:
    recovery copies raw rows read through SQL into a new table)."""
    data = pa.table(
        {
            "id": pa.array([1, 2], pa.int32()),
            "n": pa.array([10, None], pa.int64()),
            "x": pa.array([None, None], pa.float64()),
            "s": pa.array([None, None], pa.string()),
            "d": pa.array([None, None], pa.date32()),
            "ts": pa.array([None, None], pa.timestamp("us")),
        }
    )
    lh.write("raw.typed", data)
    expected = {f.name: f.type for f in data.schema}
    for query in ("select * from raw.typed where id > 5", "select * from raw.typed"):
        got = {f.name: f.type for f in lh.sql_arrow(query).schema}
        assert got == expected, query
