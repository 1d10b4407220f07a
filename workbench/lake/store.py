"""The lake: refs (branches, tags, commits) plus catalogs bound to a ref.

`VersionedLake` is the interface both profiles implement; `open_lake(settings)` picks the
implementation from `settings.profile` — the one place where that choice is made.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

from pyiceberg.catalog.sql import SqlCatalog

from workbench.errors import RefError, SettingsError
from workbench.lake.catalog import BranchCatalog, CommitCatalog, catalog_properties
from workbench.lake.ledger import PROTECTED_BRANCH, Commit, Ledger, Ref, ResolvedRef, TableState
from workbench.settings import Profile, Settings


class VersionedLake(Protocol):
    """Git-like operations over every table of the lake (Project Nessie semantics)."""

    def resolve(self, ref: str) -> ResolvedRef: ...
    def catalog(self, ref: str) -> SqlCatalog: ...
    def refs(self) -> list[Ref]: ...
    def create_branch(self, name: str, from_ref: str = "main") -> Ref: ...
    def create_tag(self, name: str, from_ref: str = "main") -> Ref: ...
    def delete_branch(self, name: str) -> None: ...
    def delete_tag(self, name: str) -> None: ...
    def log(self, ref: str = "main", limit: int | None = None) -> list[Commit]: ...
    def merge(self, source: str, into: str, message: str | None = None) -> str | None: ...
    def reset(self, branch: str, to: str) -> str: ...
    def state(self, ref: str) -> TableState: ...


class EmbeddedLake:
    """Refs and catalogs on one SQLite file under CASCADE_HOME; data in the warehouse folder/bucket."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.ensure_home()
        # SqlCatalog creates `iceberg_tables` / `iceberg_namespace_properties` on first use.
        SqlCatalog("main", **catalog_properties(settings)).engine.dispose()
        self.ledger = Ledger(settings.catalog_db)
        self.ledger.bootstrap()
        self._catalogs: dict[str, SqlCatalog] = {}

    def resolve(self, ref: str) -> ResolvedRef:
        return self.ledger.resolve(ref)

    def catalog(self, ref: str) -> SqlCatalog:
        """A catalog for a branch (writable, live) or a tag/commit (read-only, fixed)."""
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

    def create_branch(self, name: str, from_ref: str = "main") -> Ref:
        return self.ledger.create_ref(name, "branch", self.resolve(from_ref))

    def create_tag(self, name: str, from_ref: str = "main") -> Ref:
        return self.ledger.create_ref(name, "tag", self.resolve(from_ref))

    def delete_branch(self, name: str) -> None:
        self.ledger.delete_ref(name, "branch")
        self._catalogs.pop(name, None)

    def delete_tag(self, name: str) -> None:
        self.ledger.delete_ref(name, "tag")

    def log(self, ref: str = "main", limit: int | None = None) -> list[Commit]:
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


_lakes: dict[tuple[str, Path, str], VersionedLake] = {}
_lock = threading.Lock()


def open_lake(settings: Settings) -> VersionedLake:
    """The lake for these settings (one instance per process and home)."""
    if settings.profile is Profile.stack:
        raise SettingsError(
            "CASCADE_PROFILE=stack needs the Nessie/Trino stack, which this version does not implement yet; "
            "use CASCADE_PROFILE=embedded"
        )
    key = (settings.profile.value, settings.home.resolve(), settings.warehouse_uri)
    with _lock:
        if key not in _lakes:
            _lakes[key] = EmbeddedLake(settings)
        return _lakes[key]


__all__ = ["PROTECTED_BRANCH", "EmbeddedLake", "VersionedLake", "open_lake"]
