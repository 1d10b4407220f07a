"""A model written as a stream (the dbt plugin's whole-table path): `Lakehouse.write` given a function
that returns a `pa.RecordBatchReader` writes every batch as one commit, in bounded memory, and
replaces the table on overwrite (new table, schema evolution, overwrite by filter)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from workbench.errors import WriteError


def _reader(start: int, stop: int, batch: int = 1000, extra: bool = False) -> pa.RecordBatchReader:
    fields = [pa.field("k", pa.int64()), pa.field("v", pa.large_string())]
    if extra:
        fields.append(pa.field("w", pa.float64()))
    schema = pa.schema(fields)

    def batches():  # type: ignore[no-untyped-def]
        for lo in range(start, stop, batch):
            ks = list(range(lo, min(stop, lo + batch)))
            cols = [pa.array(ks, pa.int64()), pa.array([f"r{k}" for k in ks], pa.large_string())]
            if extra:
                cols.append(pa.array([k / 2 for k in ks], pa.float64()))
            yield pa.RecordBatch.from_arrays(cols, schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


def test_a_stream_creates_overwrites_and_evolves_in_one_commit_each(lh) -> None:  # type: ignore[no-untyped-def]
    first = lh.write("gold.streamed", lambda: _reader(0, 5500), mode="overwrite", message="first")
    assert first.rows_written == 5500 and first.commit_id
    got = lh.sql_arrow("select count(*) as n, sum(k) as s, min(v) as v from gold.streamed")
    assert got.to_pylist() == [{"n": 5500, "s": sum(range(5500)), "v": "r0"}]
    again = lh.write("gold.streamed", lambda: _reader(100, 2100, extra=True), mode="overwrite", message="again")
    assert again.rows_written == 2000 and again.rows_deleted == 5500
    got = lh.sql_arrow("select count(*) as n, min(k) as lo, max(w) as w from gold.streamed")
    assert got.to_pylist() == [{"n": 2000, "lo": 100, "w": 2099 / 2}]
    part = lh.write("gold.streamed", lambda: _reader(0, 10), mode="overwrite", where="k < 1000", message="part")
    assert part.rows_written == 10
    got = lh.sql_arrow("select count(*) as n, count(w) as with_w from gold.streamed")
    assert got.to_pylist() == [{"n": 10 + 1100, "with_w": 1100}]
    messages = [c.message for c in lh.log(limit=5)]
    assert messages[:3] == ["part", "again", "first"]


def test_a_keyed_write_reads_the_stream_whole(lh) -> None:  # type: ignore[no-untyped-def]
    lh.write("gold.streamed", lambda: _reader(0, 100), mode="overwrite")
    result = lh.write("gold.streamed", lambda: _reader(50, 150), mode="insert_new", key="k")
    assert result.rows_written == 50 and result.rows_skipped == 50
    with pytest.raises(WriteError):
        lh.write("gold.streamed", lambda: _reader(0, 1), mode="upsert")  # no key: refused as before


def test_a_stream_is_written_in_files_of_bounded_size(lh, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A stream is cut into data files of at most ~STREAM_FILE_BYTES of Arrow data each (so a large
    model never holds more than one file's rows), for a new table and for an existing one."""
    from workbench.lake import writes

    monkeypatch.setattr(writes, "STREAM_FILE_BYTES", 64 * 1024)  # ~5,000 rows of this schema
    lh.write("gold.streamed", lambda: _reader(0, 20_000), mode="overwrite")
    files = lh.sql_arrow('select record_count from "gold"."streamed$files"')["record_count"].to_pylist()
    assert len(files) > 2 and sum(files) == 20_000 and max(files) < 10_000
    monkeypatch.setattr(writes, "STREAM_FILE_BYTES", 32 * 1024)  # an existing table: the bound applies too
    lh.write("gold.streamed", lambda: _reader(0, 20_000), mode="overwrite")
    again = lh.sql_arrow('select record_count from "gold"."streamed$files"')["record_count"].to_pylist()
    assert sum(again) == 20_000 and max(again) < max(files)
