"""The embedded lake: refs (branches, tags, commits) in a SQLite ledger plus catalogs bound to a ref.

`VersionedLake` (in `workbench.lake.api`) is the interface both profiles implement;
`open_lake(settings)` hands over to `workbench.profiles`, the one place that picks the implementation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import RefError
from workbench.lake.api import MAIN_BRANCH, PROTECTED_BRANCH, Commit, Ref, ResolvedRef, TableState, VersionedLake
from workbench.lake.ledger import Ledger
from workbench.settings import Settings

if TYPE_CHECKING:  # pragma: no cover
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.table.snapshots import Snapshot

    from workbench.lake.maintain import MaintenanceReport
    from workbench.lake.writes import WriteResult


class EmbeddedLake:
    """Refs and catalogs on one SQLite file under CASCADE_HOME; data in the warehouse folder/bucket."""

    profile = "embedded"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.ensure_home()
        if not _has_catalog_tables(settings.catalog_db):
            from pyiceberg.catalog.sql import SqlCatalog

            from workbench.lake.catalog import catalog_properties

            # SqlCatalog creates `iceberg_tables` / `iceberg_namespace_properties` on first use.
            SqlCatalog("main", **catalog_properties(settings)).engine.dispose()
        # PyIceberg is imported only when a catalog is used: read-only commands on refs, commits
        # and table lists (`cascade tables`, `log`, `branch`) need the ledger alone
        self.ledger = Ledger(settings.catalog_db)
        self.ledger.bootstrap()
        self._catalogs: dict[str, SqlCatalog] = {}

    def resolve(self, ref: str) -> ResolvedRef:
        return self.ledger.resolve(ref)

    def catalog(self, ref: str) -> SqlCatalog:
        """A catalog for a branch (writable, live) or a tag/commit (read-only, fixed)."""
        from workbench.lake.catalog import BranchCatalog, CommitCatalog

        resolved = self.resolve(ref)
        cache_key = resolved.name if resolved.kind == "branch" else f"@{resolved.commit_id}"
        if cache_key not in self._catalogs:
            if resolved.kind == "branch":
                self._catalogs[cache_key] = BranchCatalog(resolved.name, self.settings, self.ledger)
            else:
                self._catalogs[cache_key] = CommitCatalog(resolved, self.settings, self.ledger)
        return self._catalogs[cache_key]

    def refs(self) -> list[Ref]:
        return self.ledger.refs()

    def create_branch(self, name: str, from_ref: str = MAIN_BRANCH) -> Ref:
        return self.ledger.create_ref(name, "branch", self.resolve(from_ref))

    def create_tag(self, name: str, from_ref: str = MAIN_BRANCH) -> Ref:
        return self.ledger.create_ref(name, "tag", self.resolve(from_ref))

    def delete_branch(self, name: str) -> None:
        self.ledger.delete_ref(name, "branch")
        self._catalogs.pop(name, None)

    def delete_tag(self, name: str) -> None:
        self.ledger.delete_ref(name, "tag")

    def log(self, ref: str = MAIN_BRANCH, limit: int | None = None) -> list[Commit]:
        return self.ledger.log(self.resolve(ref).commit_id, limit)

    def merge(self, source: str, into: str, message: str | None = None) -> str | None:
        target = self.resolve(into)
        if target.kind != "branch":
            raise RefError(f"cannot merge into '{into}': it is a {target.kind}, not a branch")
        return self.ledger.merge(self.resolve(source), into, author=self.settings.author, message=message)

    def reset(self, branch: str, to: str) -> str:
        resolved = self.resolve(branch)
        if resolved.kind != "branch":
            raise RefError(f"cannot reset '{branch}': it is a {resolved.kind}, not a branch")
        return self.ledger.reset(branch, self.resolve(to))

    def state(self, ref: str) -> TableState:
        return self.ledger.ref_state(self.resolve(ref))

    def commits_between(self, start: datetime, end: datetime) -> list[tuple[Commit, dict[str, str | None]]]:
        return self.ledger.commits_between(start, end)

    def io_properties(self) -> dict[str, str]:
        from workbench.lake.catalog import catalog_properties

        return catalog_properties(self.settings)

    def snapshots(self, ref: str, table: str) -> list[Snapshot]:
        from workbench.lake.catalog import load_table

        metadata = load_table(self.catalog(ref), table, ref).metadata
        return sorted(metadata.snapshots, key=lambda s: s.timestamp_ms)

    def _writable(self, ref: str) -> None:
        from workbench.errors import ReadOnlyRefError

        resolved = self.resolve(ref)
        if not resolved.writable:
            raise ReadOnlyRefError(
                f"'{ref}' is a {resolved.kind}; writes go to a branch "
                f"(create one with `cascade branch create NAME --from {ref}`)"
            )

    def write(self, ref: str, table: str, data: Any, *, message: str | None = None, **options: Any) -> WriteResult:
        from workbench.lake.writes import write_table

        self._writable(ref)
        return write_table(self.catalog(ref), table, data, message=message, **options)

    def drop_table(self, ref: str, table: str, message: str | None = None) -> str | None:
        from workbench.lake.catalog import commit_message, last_commit_id, load_table

        self._writable(ref)
        catalog = self.catalog(ref)
        load_table(catalog, table, ref)
        with commit_message(message):
            catalog.drop_table(table)
        return last_commit_id()

    def maintain(
        self,
        *,
        older_than: timedelta = timedelta(days=7),
        retain_last: int = 5,
        grace: timedelta = timedelta(hours=24),
        dry_run: bool = False,
        branches: Iterable[str] | None = None,
    ) -> MaintenanceReport:
        from workbench.lake.maintain import maintain

        return maintain(
            self,
            self.settings,
            older_than=older_than,
            retain_last=retain_last,
            grace=grace,
            dry_run=dry_run,
            branches=branches,
        )


from workbench.profiles import _lakes  # noqa: E402,F401  (the per-process cache; tests clear it)


def open_lake(settings: Settings) -> VersionedLake:
    """The lake for these settings (one instance per process, home and profile; see `workbench.profiles`)."""
    from workbench.profiles import open_lake as open_profile_lake

    return open_profile_lake(settings)


__all__ = ["PROTECTED_BRANCH", "EmbeddedLake", "VersionedLake", "open_lake"]


def _has_catalog_tables(path: Path) -> bool:
    """Whether the SQLite catalog already holds PyIceberg's tables (made once, by the first open)."""
    import sqlite3

    if not path.is_file():
        return False
    with contextlib.closing(sqlite3.connect(path)) as con:
        found = con.execute(
            "select count(*) from sqlite_master where type = 'table' "
            "and name in ('iceberg_tables', 'iceberg_namespace_properties')"
        ).fetchone()
    return bool(found and found[0] == 2)
