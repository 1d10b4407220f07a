"""Publishing Arrow tables into PostgreSQL: values, types, keys, commit record, atomic swaps."""

from __future__ import annotations

import datetime as dt
import decimal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psycopg
import pyarrow as pa
import pytest
import typer

from workbench.publish.errors import PublishConfigError, PublishError, UnsupportedTypeError
from workbench.publish.publisher import (
    PublishConfig,
    TableSpec,
    load_config,
    postgres_type,
    publish,
    published_commits,
)


def _rows(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as con:
        return con.execute(query).fetchall()


def _daily(version: int, days: int) -> pa.Table:
    return pa.table(
        {
            "patient_id": pa.array([f"p{i % 3}" for i in range(days)]),
            "reading_date": pa.array([dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(days)]),
            "mean_glucose": pa.array([100.0 + i + version for i in range(days)]),
            "version": pa.array([version] * days, pa.int32()),
        }
    )


def test_publish_two_tables_rows_and_values(pg_url: str) -> None:
    daily = _daily(1, 50)
    patients = pa.table({"patient_id": ["p0", "p1", "p2"], "time_zone": ["UTC", "Europe/Berlin", None]})
    summary = publish({"mrt_daily": daily, "mrt_patients": lambda: patients}, commit_id="c1", url=pg_url)

    assert {(t.table, t.rows) for t in summary.tables} == {("marts.mrt_daily", 50), ("marts.mrt_patients", 3)}
    got = _rows(pg_url, "select patient_id, reading_date, mean_glucose, version from marts.mrt_daily order by 2")
    assert got == list(zip(*(daily.column(c).to_pylist() for c in daily.column_names), strict=True))
    assert _rows(pg_url, "select * from marts.mrt_patients order by 1") == [
        ("p0", "UTC"),
        ("p1", "Europe/Berlin"),
        ("p2", None),
    ]
    assert published_commits(pg_url) == {"mrt_daily": "c1", "mrt_patients": "c1"}
    record = _rows(pg_url, "select table_name, rows, publish_id from marts._cascade_publish order by 1")
    assert record == [("mrt_daily", 50, summary.publish_id), ("mrt_patients", 3, summary.publish_id)]
    # the staging area is cleaned up
    assert _rows(pg_url, "select count(*) from pg_tables where schemaname = '_cascade_staging'") == [(0,)]


def test_type_mapping_round_trip(pg_url: str) -> None:
    ts = dt.datetime(2026, 3, 1, 12, 30, 15, 123456)
    table = pa.table(
        {
            "i8": pa.array([1, None], pa.int8()),
            "u32": pa.array([4_000_000_000, 0], pa.uint32()),
            "u64": pa.array([2**64 - 1, 0], pa.uint64()),
            "f32": pa.array([1.5, None], pa.float32()),
            "f64": pa.array([2.25, -1.0]),
            "ok": pa.array([True, None]),
            "s": pa.array(["ä", "b"], pa.large_string()),
            "cat": pa.array(["low", "high"]).dictionary_encode(),
            "bin": pa.array([b"\x00\x01", None]),
            "day": pa.array([dt.date(2026, 1, 2), None]),
            "tod": pa.array([dt.time(7, 5), None], pa.time64("us")),
            "ts": pa.array([ts, None], pa.timestamp("us")),
            "ts_ns": pa.array([ts, None], pa.timestamp("ns")),
            "tstz": pa.array([ts, None], pa.timestamp("us", tz="UTC")),
            "dec": pa.array([decimal.Decimal("12.345"), None], pa.decimal128(9, 3)),
            "gap": pa.array([dt.timedelta(minutes=45), None], pa.duration("s")),
            "tags": pa.array([["a", "b"], []], pa.list_(pa.string())),
            "nothing": pa.array([None, None], pa.null()),
        }
    )
    publish({"mrt_types": table, "mrt_empty": table.slice(0, 0)}, url=pg_url)
    assert _rows(pg_url, "select count(*) from marts.mrt_empty") == [(0,)]
    columns = _rows(
        pg_url,
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'marts' and table_name = 'mrt_types'",
    )
    types = {str(name): str(data_type) for name, data_type in columns}
    assert types == {
        "i8": "smallint",
        "u32": "bigint",
        "u64": "numeric",
        "f32": "real",
        "f64": "double precision",
        "ok": "boolean",
        "s": "text",
        "cat": "text",
        "bin": "bytea",
        "day": "date",
        "tod": "time without time zone",
        "ts": "timestamp without time zone",
        "ts_ns": "timestamp without time zone",
        "tstz": "timestamp with time zone",
        "dec": "numeric",
        "gap": "interval",
        "tags": "ARRAY",
        "nothing": "text",
    }
    first = _rows(pg_url, "select * from marts.mrt_types order by u32 desc")[0]
    assert first == (
        1,
        4_000_000_000,
        decimal.Decimal(2**64 - 1),
        1.5,
        2.25,
        True,
        "ä",
        "low",
        b"\x00\x01",
        dt.date(2026, 1, 2),
        dt.time(7, 5),
        ts,
        ts,
        ts.replace(tzinfo=dt.UTC),
        decimal.Decimal("12.345"),
        dt.timedelta(minutes=45),
        ["a", "b"],
        None,
    )


def test_unsupported_type_is_refused_before_touching_the_database(pg_url: str) -> None:
    nested = pa.table({"s": pa.array([{"a": 1}])})
    with pytest.raises(UnsupportedTypeError, match="s"):
        publish({"mrt_nested": nested}, url=pg_url)
    with pytest.raises(PublishError, match="no columns"):
        publish({"mrt_nested": pa.table({})}, url=pg_url)
    assert postgres_type(pa.int64()) == "bigint"
    assert _rows(pg_url, "select to_regclass('marts.mrt_nested')") == [(None,)]


def test_config_keys_indexes_and_key_violation(pg_url: str, tmp_path: Path) -> None:
    path = tmp_path / "publish.yaml"
    path.write_text(
        textwrap.dedent(
            """
            schema: marts
            lock_timeout: 5s
            tables:
              - name: mrt_daily
                primary_key: [patient_id, reading_date]
                indexes: [reading_date, [patient_id, version]]
            """
        )
    )
    config = load_config(path)
    assert config.lock_timeout_s == 5.0
    assert config.tables == (
        TableSpec(
            "mrt_daily",
            "marts.mrt_daily",
            ("patient_id", "reading_date"),
            (("reading_date",), ("patient_id", "version")),
        ),
    )
    publish({"mrt_daily": _daily(1, 20)}, config=config, commit_id="k1", url=pg_url)
    indexes = _rows(
        pg_url,
        "select indexname from pg_indexes where schemaname = 'marts' and tablename = 'mrt_daily' order by 1",
    )
    assert indexes == [
        ("mrt_daily_patient_id_version_idx",),
        ("mrt_daily_pkey",),
        ("mrt_daily_reading_date_idx",),
    ]
    # republish keeps the names (the old indexes went with the old table)
    publish({"mrt_daily": _daily(2, 10)}, config=config, commit_id="k2", url=pg_url)
    assert len(_rows(pg_url, "select 1 from pg_indexes where tablename = 'mrt_daily'")) == 3

    duplicated = pa.concat_tables([_daily(3, 5), _daily(3, 5)])
    with pytest.raises(PublishError, match="unchanged"):
        publish({"mrt_daily": duplicated}, config=config, commit_id="k3", url=pg_url)
    assert _rows(pg_url, "select count(*), min(version) from marts.mrt_daily") == [(10, 2)]
    assert published_commits(pg_url) == {"mrt_daily": "k2"}
    assert _rows(pg_url, "select count(*) from pg_tables where schemaname = '_cascade_staging'") == [(0,)]

    with pytest.raises(PublishConfigError, match="not listed"):
        publish({"mrt_daily": _daily(1, 1), "other": _daily(1, 1)}, config=config, url=pg_url)
    with pytest.raises(PublishConfigError, match="no data"):
        publish({}, config=config, url=pg_url)


def test_reader_roles_keep_select_across_publishes(pg_url: str, tmp_path: Path) -> None:
    role = f"reader_{tmp_path.name[-8:].lower().replace('-', '_')}"
    path = tmp_path / "publish.yaml"
    path.write_text(f"readers: [{role}]\ntables: [mrt_daily]\n")
    config = load_config(path)
    assert config.readers == (role,)
    with pytest.raises(PublishConfigError, match="does not exist"):
        publish({"mrt_daily": _daily(1, 3)}, config=config, url=pg_url)
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f"create role {role} login")
    try:
        for version in (1, 2):  # the second publish replaces the table: the grant must come back
            publish({"mrt_daily": _daily(version, 3)}, config=config, url=pg_url)
            as_reader = pg_url.replace("postgres@", f"{role}@")
            assert _rows(as_reader, "select count(*), min(version) from marts.mrt_daily") == [(3, version)]
            assert _rows(as_reader, "select count(*) from marts._cascade_publish") == [(1,)]
    finally:
        with psycopg.connect(pg_url, autocommit=True) as con:
            con.execute(f"drop owned by {role}")
            con.execute(f"drop role {role}")


def test_bad_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "publish.yaml"
    path.write_text("tables:\n  - name: Bad-Name\n")
    with pytest.raises(PublishConfigError, match="lowercase SQL identifier"):
        load_config(path)
    path.write_text("tables: nope\n")
    with pytest.raises(PublishConfigError, match="tables"):
        load_config(path)


def test_project_publish_yaml_is_valid() -> None:
    config = load_config(Path(__file__).resolve().parents[2] / "publish.yaml")
    assert config.schema == "marts" and config.tables


def test_concurrent_reader_sees_old_or_new_never_mixed(pg_url: str) -> None:
    sizes = {1: 40, 2: 25}

    def tables(version: int) -> dict[str, pa.Table]:
        return {"mrt_a": _daily(version, sizes[version]), "mrt_b": _daily(version, sizes[version])}

    publish(tables(1), url=pg_url, commit_id="v1")
    query = (
        "select 'a', version, count(*) from marts.mrt_a group by version "
        "union all select 'b', version, count(*) from marts.mrt_b group by version"
    )
    seen: dict[int, int] = {1: 0, 2: 0}
    problems: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        with psycopg.connect(pg_url, autocommit=True) as con:
            while not stop.is_set():
                try:
                    result = con.execute(query).fetchall()
                except psycopg.Error as exc:
                    problems.append(f"query failed: {exc}")
                    return
                versions = {v for _, v, _ in result}
                tables_seen = sorted(t for t, _, _ in result)
                if len(versions) != 1 or tables_seen != ["a", "b"]:
                    problems.append(f"mixed or empty: {result}")
                    return
                (version,) = versions
                if any(n != sizes[version] for _, _, n in result):
                    problems.append(f"partial: {result}")
                    return
                seen[version] += 1

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for i in range(6):
            version = 2 if i % 2 == 0 else 1
            # hold the swap transaction open a moment so readers pile up on its locks
            publish(
                tables(version),
                url=pg_url,
                commit_id=f"v{version}",
                before_swap_commit=lambda: time.sleep(0.3),
            )
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert problems == []
    assert seen[1] > 0 and seen[2] > 0


_KILLED_PUBLISHER = """
import sys, time
from pathlib import Path
import pyarrow as pa
from workbench.publish.publisher import publish

url, marker = sys.argv[1], Path(sys.argv[2])
table = pa.table({"version": pa.array([2] * 500, pa.int32()), "x": pa.array(range(500))})

def hold() -> None:
    marker.write_text("staged and swapped, not committed")
    time.sleep(120)

publish({"mrt_a": table, "mrt_b": table}, url=url, commit_id="v2", before_swap_commit=hold)
"""


def test_killed_publisher_leaves_previous_marts(pg_url: str, tmp_path: Path) -> None:
    old = pa.table({"version": pa.array([1] * 300, pa.int32()), "x": pa.array(range(300))})
    publish({"mrt_a": old, "mrt_b": old}, url=pg_url, commit_id="v1")

    marker = tmp_path / "marker"
    child = subprocess.Popen([sys.executable, "-c", _KILLED_PUBLISHER, pg_url, str(marker)])
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, "the publisher exited before reaching the hook"
            assert time.monotonic() < deadline, "the publisher never reached the hook"
            time.sleep(0.05)
        # the child's swap is staged and executed but uncommitted: its transaction is open
        open_tx = _rows(
            pg_url,
            "select count(*) from pg_stat_activity where datname = current_database() "
            "and state = 'idle in transaction' and backend_xid is not null",
        )
        assert open_tx == [(1,)]
    finally:
        child.kill()  # SIGKILL
        child.wait(timeout=30)
    assert child.returncode == -9

    assert _rows(pg_url, "select count(*), min(version), max(version) from marts.mrt_a") == [(300, 1, 1)]
    assert _rows(pg_url, "select count(*), min(version), max(version) from marts.mrt_b") == [(300, 1, 1)]
    assert published_commits(pg_url) == {"mrt_a": "v1", "mrt_b": "v1"}
    # the crashed publish left committed staging tables; the next publish clears them and succeeds
    assert _rows(pg_url, "select count(*) from pg_tables where schemaname = '_cascade_staging'") == [(2,)]
    new = pa.table({"version": pa.array([3] * 7, pa.int32()), "x": pa.array(range(7))})
    publish({"mrt_a": new, "mrt_b": new}, url=pg_url, commit_id="v3")
    assert _rows(pg_url, "select count(*), min(version) from marts.mrt_a") == [(7, 3)]
    assert _rows(pg_url, "select count(*) from pg_tables where schemaname = '_cascade_staging'") == [(0,)]


def test_publish_uses_configured_database(server_home: Path) -> None:
    from workbench.publish.postgres import connection_url

    publish({"mrt_env": pa.table({"x": [1, 2, 3]})}, commit_id="env")
    assert _rows(connection_url(), "select sum(x) from marts.mrt_env") == [(6,)]
    assert isinstance(PublishConfig(tables=()), PublishConfig)


def test_publish_marts_from_the_lake_main_branch(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.lakehouse import Lakehouse
    from workbench.publish.publisher import publish_marts
    from workbench.settings import get_settings

    monkeypatch.setenv("CASCADE_HOME", str(tmp_path / "lake"))
    monkeypatch.delenv("CASCADE_POSTGRES_URL", raising=False)
    get_settings.cache_clear()
    try:
        dev = Lakehouse("dev")
        dev.write("marts.mrt_daily", _daily(1, 12), mode="overwrite", message="marts v1")
        dev.write("marts.mrt_unpublished", _daily(1, 2), mode="overwrite", message="not in config")
        dev.merge("dev", into="main")
        # dev moves on; main (what is published) does not
        dev.write("marts.mrt_daily", _daily(2, 5), mode="overwrite", message="marts v2 on dev only")
        head = Lakehouse("main").log(limit=1)[0].id

        config = PublishConfig(tables=(TableSpec("mrt_daily", "marts.mrt_daily", ("patient_id", "reading_date")),))
        summary = publish_marts("main", config=config, url=pg_url)
        assert summary.commit_id == head
        assert [(t.table, t.rows) for t in summary.tables] == [("marts.mrt_daily", 12)]
        got = _rows(pg_url, "select patient_id, reading_date, mean_glucose, version from marts.mrt_daily order by 2")
        expected = _daily(1, 12)
        assert got == list(zip(*(expected.column(c).to_pylist() for c in expected.column_names), strict=True))
        assert published_commits(pg_url) == {"mrt_daily": head}
        assert _rows(pg_url, "select to_regclass('marts.mrt_unpublished')") == [(None,)]

        # the same through `cascade publish`, with the database given by CASCADE_POSTGRES_URL
        from typer.testing import CliRunner

        from workbench.publish.cli import register

        app = typer.Typer()
        register(app)
        (tmp_path / "publish.yaml").write_text(
            "tables:\n  - name: mrt_daily\n    primary_key: [patient_id, reading_date]\n"
        )
        monkeypatch.setenv("CASCADE_POSTGRES_URL", pg_url)
        get_settings.cache_clear()
        result = CliRunner().invoke(app, ["publish", "--ref", "main", "--config", str(tmp_path / "publish.yaml")])
        assert result.exit_code == 0, result.output
        assert "published 1 table(s), 12 rows" in result.output and head in result.output
    finally:
        get_settings.cache_clear()
