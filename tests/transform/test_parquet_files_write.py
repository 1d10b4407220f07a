"""A whole-table model written by DuckDB's Parquet writer (the dbt plugin's full-build path):
`Lakehouse.write` given `ParquetFiles` registers the files DuckDB writes into the table's data
location in one commit that also drops the old files; it falls back to the record-batch stream where
the files cannot be registered as written; a process killed after writing the files but before the
commit leaves the table wholly old, and the next write succeeds."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from workbench.errors import WriteError
from workbench.lake.writes import ParquetFiles
from workbench.lakehouse import Lakehouse


def _files(con: duckdb.DuckDBPyConnection, sql: str) -> ParquetFiles:
    def write(folder: str) -> int:
        options = "format parquet, compression zstd, file_size_bytes '64MB', filename_pattern 'part_{uuid}'"
        return int(con.execute(f"copy ({sql}) to '{folder}' ({options})").fetchall()[0][0])

    return ParquetFiles(
        con.sql(sql).limit(0).to_arrow_table().schema, write, lambda: con.sql(sql).fetch_record_batch(1000)
    )


def _data_files(lh: Lakehouse, table: str) -> list[str]:
    return [task.file.file_path for task in lh.table(table).scan().plan_files()]


def test_files_create_and_replace_the_table_in_one_commit_each(lh: Lakehouse) -> None:
    con = duckdb.connect()
    first = lh.write("gold.copied", _files(con, "select range as k, 'r' || range as v from range(5000)"), mode="overwrite", message="first")  # fmt: skip
    assert first.rows_written == 5000 and first.commit_id
    registered = _data_files(lh, "gold.copied")
    assert registered and all("/part_" in f for f in registered)  # DuckDB's files, registered as they are
    location = lh.table("gold.copied").metadata.location
    assert all(f.startswith(location + "/data/") for f in registered)  # named like PyIceberg's own files
    got = lh.sql_arrow("select count(*) as n, sum(k) as s, min(v) as v from gold.copied").to_pylist()
    assert got == [{"n": 5000, "s": sum(range(5000)), "v": "r0"}]
    again = lh.write("gold.copied", _files(con, "select range + 100 as k, 'x' as v from range(20)"), mode="overwrite", message="again")  # fmt: skip
    assert again.rows_written == 20 and again.rows_deleted == 5000
    assert lh.sql_arrow("select min(k) as lo, count(*) as n from gold.copied").to_pylist() == [{"lo": 100, "n": 20}]
    assert [c.message for c in lh.log(limit=2)] == ["again", "first"]
    # PyIceberg reads DuckDB's files (no field ids) through the name mapping the registration sets
    assert lh.table("gold.copied").scan().to_arrow().num_rows == 20


def test_files_that_do_not_hold_the_rows_written_are_refused(lh: Lakehouse) -> None:
    con = duckdb.connect()
    lh.write("gold.copied", _files(con, "select range as k from range(10)"), mode="overwrite")

    def one_file(folder: str) -> int:  # a single file named like the folder: not inside it
        return int(
            con.execute(f"copy (select range as k from range(5)) to '{folder}' (format parquet)").fetchall()[0][0]
        )

    files = ParquetFiles(pa.schema([pa.field("k", pa.int64())]), one_file, lambda: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(WriteError, match="hold 0"):
        lh.write("gold.copied", files, mode="overwrite")
    assert lh.sql_arrow("select count(*) as n from gold.copied").to_pylist() == [{"n": 10}]


def test_a_changed_schema_falls_back_to_the_stream(lh: Lakehouse) -> None:
    con = duckdb.connect()
    lh.write("gold.copied", _files(con, "select range as k from range(10)"), mode="overwrite")
    evolved = lh.write("gold.copied", _files(con, "select range as k, range / 2 as w from range(30)"), mode="overwrite")  # fmt: skip
    assert evolved.rows_written == 30
    assert lh.sql_arrow("select count(w) as n from gold.copied").to_pylist() == [{"n": 30}]
    assert not any("/part_" in f for f in _data_files(lh, "gold.copied"))  # written by PyIceberg


KILLED_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import duckdb
    from workbench.lake.writes import ParquetFiles
    from workbench.lakehouse import Lakehouse

    con = duckdb.connect()
    sql = "select range as k from range(1000, 1100)"

    def write(folder):
        con.execute(f"copy ({sql}) to '{folder}' (format parquet, file_size_bytes '64MB')")
        sys.stdout.write(folder + "\\n")
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)  # the files are written, nothing is committed

    files = ParquetFiles(con.sql(sql).limit(0).to_arrow_table().schema, write, lambda: None)
    Lakehouse("dev").write("gold.copied", files, mode="overwrite")
    """
)


def test_killed_before_the_commit_leaves_the_table_wholly_old(lh: Lakehouse, cascade_home: Path) -> None:
    con = duckdb.connect()
    lh.write("gold.copied", _files(con, "select range as k from range(10)"), mode="overwrite")
    env = {**os.environ, "CASCADE_HOME": str(cascade_home)}
    proc = subprocess.run([sys.executable, "-c", KILLED_SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]
    folder = Path(proc.stdout.strip().splitlines()[-1])
    assert any(folder.glob("*.parquet"))  # written, but referenced by no snapshot
    fresh = Lakehouse("dev")
    assert fresh.sql_arrow("select count(*) as n, max(k) as m from gold.copied").to_pylist() == [{"n": 10, "m": 9}]
    assert not any(str(folder) in f for f in _data_files(fresh, "gold.copied"))
    fresh.write("gold.copied", _files(con, "select range as k from range(7)"), mode="overwrite")
    assert fresh.sql_arrow("select count(*) as n from gold.copied").to_pylist() == [{"n": 7}]
    assert pa.types.is_int64(fresh.table("gold.copied").schema().as_arrow().field("k").type)
