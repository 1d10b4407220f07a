"""Snapshot expiry and orphan cleanup never delete a file another ref still reads."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd

from workbench.lake.maintain import maintain, reachable_files
from workbench.lakehouse import Lakehouse


def _files(home: Path) -> set[str]:
    return {str(p) for p in (home / "warehouse").rglob("*.parquet")}


def test_expiry_on_dev_keeps_files_main_still_reads(lh: Lakehouse, cascade_home: Path) -> None:
    lh.write("raw.a", pd.DataFrame({"id": range(100)}))
    lh.merge("dev", into="main")
    main_files = _files(cascade_home)
    # dev rewrites the table three times; its old snapshots become expirable
    for i in range(3):
        lh.write("raw.a", pd.DataFrame({"id": range(i, i + 10)}), mode="overwrite")
    orphan = cascade_home / "warehouse" / "raw" / "a" / "data" / "orphan-from-crashed-writer.parquet"
    orphan.write_bytes(b"not referenced by anything")

    report = maintain(lh.lake, lh.settings, older_than=timedelta(0), retain_last=1, grace=timedelta(0))

    assert report.snapshots_expired.get("dev:raw.a", 0) >= 3
    assert str(orphan) in report.files_deleted
    assert not orphan.exists()
    assert main_files <= _files(cascade_home), "a file main reads was deleted"
    main = Lakehouse("main")
    assert int(main.sql("select count(*) as n from raw.a")["n"][0]) == 100
    assert int(lh.sql("select count(*) as n from raw.a")["n"][0]) == 10
    # every file still on disk that dev's old snapshots used, and no ref reaches, is gone
    reachable = reachable_files(lh.lake, lh.settings)
    leftover = {f for f in _files(cascade_home) if f not in reachable}
    assert leftover == set()


def test_tags_keep_their_files(lh: Lakehouse, cascade_home: Path) -> None:
    lh.write("raw.a", pd.DataFrame({"id": range(50)}))
    lh.tag("snapshot-1")
    lh.write("raw.a", pd.DataFrame({"id": range(5)}), mode="overwrite")
    maintain(lh.lake, lh.settings, older_than=timedelta(0), retain_last=1, grace=timedelta(0))
    assert int(Lakehouse("snapshot-1").sql("select count(*) as n from raw.a")["n"][0]) == 50


def test_dry_run_and_grace_period_delete_nothing(lh: Lakehouse, cascade_home: Path) -> None:
    lh.write("raw.a", pd.DataFrame({"id": range(5)}))
    orphan = cascade_home / "warehouse" / "raw" / "a" / "data" / "young.parquet"
    orphan.write_bytes(b"x")
    report = maintain(lh.lake, lh.settings, grace=timedelta(0), dry_run=True)
    assert str(orphan) in report.files_deleted and orphan.exists()
    report = maintain(lh.lake, lh.settings, grace=timedelta(hours=1))
    assert report.files_deleted == [] and orphan.exists()
