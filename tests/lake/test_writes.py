"""Table writes: create, append, overwrite (by filter), upsert, insert_new, schema evolution, partitions."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from workbench.errors import SchemaError, WriteError
from workbench.lakehouse import Lakehouse


def _df(ids: list[int], v: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "v": [v] * len(ids)})


def _rows(lh: Lakehouse, table: str) -> list[tuple]:
    return [tuple(r) for r in lh.sql(f"select * from {table} order by all").itertuples(index=False)]


def test_each_write_is_one_commit_with_its_message(lh: Lakehouse) -> None:
    r1 = lh.write("raw.t", _df([1, 2]), message="load one")
    r2 = lh.write("raw.t", _df([3]), message="load two")
    log = lh.log(limit=2)
    assert [c.id for c in log] == [r2.commit_id, r1.commit_id]
    assert [c.message for c in log] == ["load two", "load one"]
    assert r1.rows_written == 2 and r2.rows_written == 1


def test_overwrite_all_and_by_filter(lh: Lakehouse) -> None:
    lh.write("raw.t", _df([1, 2, 3, 4]))
    r = lh.write("raw.t", _df([10], 2.0), mode="overwrite", where="id >= 3")
    assert r.rows_deleted == 2
    assert _rows(lh, "raw.t") == [(1, 1.0), (2, 1.0), (10, 2.0)]
    lh.write("raw.t", _df([7]), mode="overwrite")
    assert _rows(lh, "raw.t") == [(7, 1.0)]


def test_upsert_by_single_and_composite_key(lh: Lakehouse) -> None:
    lh.write("raw.t", _df([1, 2, 3]))
    r = lh.write("raw.t", pd.DataFrame({"id": [2, 4, 4], "v": [9.0, 8.0, 7.0]}), mode="upsert", key="id")
    assert r.rows_deleted == 1
    assert _rows(lh, "raw.t") == [(1, 1.0), (2, 9.0), (3, 1.0), (4, 7.0)]  # last duplicate wins

    lh.write("raw.k", pd.DataFrame({"a": ["x", "x", "y"], "b": [1, 2, 1], "v": [0, 0, 0]}))
    lh.write("raw.k", pd.DataFrame({"a": ["x", "y"], "b": [2, 2], "v": [5, 5]}), mode="upsert", key=["a", "b"])
    # ("y", 1) matches the superset filter a in (x, y) and b in (2) only partly: it must survive
    assert _rows(lh, "raw.k") == [("x", 1, 0), ("x", 2, 5), ("y", 1, 0), ("y", 2, 5)]


def test_insert_new_skips_existing_keys_and_is_idempotent(lh: Lakehouse) -> None:
    lh.write("raw.t", _df([1, 2]))
    r = lh.write("raw.t", _df([2, 3, 3], 5.0), mode="insert_new", key="id")
    assert (r.rows_written, r.rows_skipped) == (1, 2)
    again = lh.write("raw.t", _df([2, 3], 5.0), mode="insert_new", key="id")
    assert (again.rows_written, again.rows_skipped, again.commit_id) == (0, 2, None)
    assert _rows(lh, "raw.t") == [(1, 1.0), (2, 1.0), (3, 5.0)]


def test_new_columns_are_added_never_dropped(lh: Lakehouse) -> None:
    lh.write("raw.t", _df([1]))
    lh.write("raw.t", pd.DataFrame({"id": [2], "v": [2.0], "extra": ["new"]}))
    lh.write("raw.t", pd.DataFrame({"id": [3]}))  # a write without some columns keeps them (nulls)
    frame = lh.sql("select id, v, extra from raw.t order by id")
    assert frame["extra"].tolist()[1] == "new"
    assert pd.isna(frame["extra"][0]) and pd.isna(frame["v"][2])
    assert [f.name for f in lh.table("raw.t").schema().fields] == ["id", "v", "extra"]


def test_type_promotion_and_incompatible_change(lh: Lakehouse) -> None:
    lh.write("raw.t", pa.table({"id": pa.array([1], pa.int32())}))
    lh.write("raw.t", pa.table({"id": pa.array([2**40], pa.int64())}))  # int -> long is allowed
    assert lh.sql("select max(id) as m from raw.t")["m"][0] == 2**40
    with pytest.raises(SchemaError, match="id"):
        lh.write("raw.t", pd.DataFrame({"id": ["not a number"]}))
    assert int(lh.sql("select count(*) as n from raw.t")["n"][0]) == 2


def test_day_partitioning(lh: Lakehouse) -> None:
    ts = pd.date_range("2026-01-01", periods=3 * 288, freq="5min", tz="UTC")
    lh.write("silver.f", pd.DataFrame({"ts": ts, "g": 100}), partition_by=[("ts", "day")])
    table = lh.table("silver.f")
    assert [f.name for f in table.spec().fields] == ["ts_day"]
    files = lh.sql('select * from silver."f$files"')
    assert len(files) == 3  # one data file per day
    assert lh.sql("select count(*) as n from silver.f where ts >= '2026-01-03'")["n"][0] == 288


def test_bad_requests_are_clear_errors(lh: Lakehouse) -> None:
    with pytest.raises(WriteError, match="key"):
        lh.write("raw.t", _df([1]), mode="upsert")
    with pytest.raises(WriteError, match="mode"):
        lh.write("raw.t", _df([1]), mode="merge")  # type: ignore[arg-type]
    with pytest.raises(WriteError, match="namespace.table"):
        lh.write("t", _df([1]))
    with pytest.raises(WriteError, match="partition"):
        lh.write("raw.p", _df([1]), partition_by=[("id", "week")])


def test_pandas_nanosecond_timestamps_and_all_null_columns(lh: Lakehouse) -> None:
    frame = pd.DataFrame({"ts": pd.to_datetime(["2026-01-01 00:00:00.123456789"], utc=True), "empty": [None]})
    lh.write("raw.t", frame)
    out = lh.sql("select * from raw.t")
    assert str(out["ts"][0]).startswith("2026-01-01 00:00:00.123456")
    assert "empty" in out.columns
