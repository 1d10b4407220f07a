"""DuckDB sessions bound to a ref: views, time travel (Trino syntax), metadata tables, errors."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import duckdb
import pandas as pd
import pytest

from workbench.errors import QueryError
from workbench.lakehouse import Lakehouse
from workbench.sql.duckdb import attach_ref


def test_every_table_is_a_schema_qualified_view_over_data_files(lh: Lakehouse) -> None:
    lh.write("raw.a", pd.DataFrame({"id": [1, 2]}))
    lh.write("silver.b", pd.DataFrame({"id": [3]}))
    views = lh.sql("select schema_name, view_name, sql from duckdb_views() where not internal order by 1, 2")
    assert views[["schema_name", "view_name"]].values.tolist() == [["raw", "a"], ["silver", "b"]]
    assert all("read_parquet" in s for s in views["sql"])  # lazy scans, nothing materialized
    assert lh.sql("select sum(id) as s from raw.a join silver.b using (id)")["s"].isna().all()


def test_session_sees_new_commits_on_its_branch(lh: Lakehouse) -> None:
    lh.write("raw.a", pd.DataFrame({"id": [1]}))
    assert lh.sql("select count(*) as n from raw.a")["n"][0] == 1
    other = Lakehouse("dev")
    other.write("raw.a", pd.DataFrame({"id": [2]}))
    assert lh.sql("select count(*) as n from raw.a")["n"][0] == 2


def test_time_travel_by_version_and_timestamp(lh: Lakehouse) -> None:
    lh.write("raw.a", pd.DataFrame({"id": [1]}))
    first = lh.history("raw.a")["snapshot_id"].iloc[-1]
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    lh.write("raw.a", pd.DataFrame({"id": [2, 3]}))
    assert lh.sql(f"select count(*) as n from raw.a for version as of {first}")["n"][0] == 1
    stamp = between.strftime("%Y-%m-%d %H:%M:%S.%f")
    assert lh.sql(f"select count(*) as n from raw.a for timestamp as of timestamp '{stamp}'")["n"][0] == 1
    assert len(lh.at("raw.a", as_of=between)) == 1
    assert len(lh.at("raw.a", snapshot_id=int(first))) == 1
    assert len(Lakehouse("dev", as_of=between).sql("select * from raw.a")) == 1
    with pytest.raises(QueryError, match="no snapshot"):
        lh.sql("select * from raw.a for version as of 42")


def test_metadata_tables(lh: Lakehouse) -> None:
    lh.write("raw.a", pd.DataFrame({"id": [1]}))
    lh.write("raw.a", pd.DataFrame({"id": [2]}))
    assert len(lh.sql('select * from raw."a$snapshots"')) == 2
    assert len(lh.sql('select * from raw."a$history"')) == 2
    assert len(lh.sql('select file_path from raw."a$files"')) == 2
    with pytest.raises(QueryError, match="unknown metadata table"):
        lh.sql('select * from raw."a$nope"')


def test_empty_table_has_columns(lh: Lakehouse) -> None:
    lh.write("raw.e", pd.DataFrame({"id": pd.Series([], dtype="int64"), "name": pd.Series([], dtype="str")}))
    frame = lh.sql("select * from raw.e")
    assert list(frame.columns) == ["id", "name"] and len(frame) == 0


def test_bad_sql_is_one_clear_error(lh: Lakehouse) -> None:
    with pytest.raises(QueryError) as err:
        lh.sql("selec 1")
    assert "\n" not in str(err.value) and "syntax" in str(err.value).lower()


def test_attach_ref_into_an_existing_connection(lh: Lakehouse) -> None:
    lh.write("raw.a", pd.DataFrame({"id": [1, 2, 3]}))
    con = duckdb.connect()
    attach_ref(con, "dev")
    assert con.sql("select count(*) from raw.a").fetchall() == [(3,)]
