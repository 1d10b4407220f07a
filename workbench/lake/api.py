"""The lake interface both profiles implement, and its neutral types.

A *lake* is a set of Iceberg tables with Git-like history over all of them (Project Nessie
semantics): branches and tags point at commits, a commit changes one or more tables atomically, a
merge applies every table change of one branch onto another or nothing. Tables are read and written
through a PyIceberg `Catalog` bound to a ref.

Nothing here names an implementation: `EmbeddedLake` (SQLite ledger, `workbench.lake.store`) and
`NessieLake` (Nessie REST API v2, `workbench.lake.nessie`) both satisfy `VersionedLake`, and
`workbench.profiles` is the one place that picks one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover - typing only
    from pyiceberg.catalog import Catalog
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.table.snapshots import Snapshot

    from workbench.lake.maintain import MaintenanceReport
    from workbench.lake.writes import WriteMode, WriteResult

# The write-audit-publish branches (one definition): ingestion and the transforms write to
# DEV_BRANCH, the audit promotes to MAIN_BRANCH, which is what is published and read by default.
# Every default of a function or CLI option names these; env.yaml's `branch`/`baseline` equal them
# (checked by a test). Kept here, with the other ref names, in a module without heavy imports.
DEV_BRANCH = "dev"
MAIN_BRANCH = "main"
DEFAULT_BRANCHES = (MAIN_BRANCH, DEV_BRANCH)
DEFAULT_NAMESPACES = ("raw", "bronze", "silver", "gold", "marts", "ops")
PROTECTED_BRANCH = MAIN_BRANCH
RUN_HISTORY_BRANCH = "ops"  # task records (ops.pipeline_runs); never offered as a glucose ref

TableState = dict[str, str]  # "namespace.table" -> metadata location


@dataclass(frozen=True)
class Commit:
    """One commit of the lake (on either profile)."""

    id: str
    parent_id: str | None
    merge_parent_id: str | None
    branch: str | None
    created_at: datetime
    author: str
    message: str
    operation: str
    tables: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "parent_id": self.parent_id,
            "merge_parent_id": self.merge_parent_id,
            "branch": self.branch,
            "created_at": self.created_at.isoformat(),
            "author": self.author,
            "message": self.message,
            "operation": self.operation,
            "tables": list(self.tables),
        }


@dataclass(frozen=True)
class Ref:
    """A branch or tag."""

    name: str
    kind: str  # "branch" | "tag"
    commit_id: str


@dataclass(frozen=True)
class ResolvedRef:
    """What a user-supplied ref string points at."""

    name: str  # the branch/tag name, or the commit id for a bare commit
    kind: str  # "branch" | "tag" | "commit"
    commit_id: str

    @property
    def writable(self) -> bool:
        return self.kind == "branch"


@runtime_checkable
class VersionedLake(Protocol):
    """Git-like operations over every table of the lake, plus writes that return their commit."""

    profile: str

    # ---- refs and history ------------------------------------------------------------------
    def resolve(self, ref: str) -> ResolvedRef: ...
    def refs(self) -> list[Ref]: ...
    def create_branch(self, name: str, from_ref: str = MAIN_BRANCH) -> Ref: ...
    def create_tag(self, name: str, from_ref: str = MAIN_BRANCH) -> Ref: ...
    def delete_branch(self, name: str) -> None: ...
    def delete_tag(self, name: str) -> None: ...
    def log(self, ref: str = MAIN_BRANCH, limit: int | None = None) -> list[Commit]: ...
    def merge(self, source: str, into: str, message: str | None = None) -> str | None: ...
    def reset(self, branch: str, to: str) -> str: ...
    def commits_between(self, start: datetime, end: datetime) -> list[tuple[Commit, dict[str, str | None]]]:
        """Commits on any branch made in [start, end], oldest first, with the table pointers they set."""
        ...

    # ---- tables ---------------------------------------------------------------------------
    def catalog(self, ref: str) -> Catalog:
        """A PyIceberg catalog on `ref`: writable and live for a branch, read-only for a tag or commit."""
        ...

    def state(self, ref: str) -> TableState:
        """Every table on `ref` with its current metadata location."""
        ...

    def io_properties(self) -> dict[str, str]:
        """PyIceberg FileIO properties that read this lake's files (local paths or S3)."""
        ...

    def snapshots(self, ref: str, table: str) -> list[Snapshot]:
        """Every Iceberg snapshot of `table` reachable from `ref`, oldest first (`cascade history`)."""
        ...

    def write(
        self,
        ref: str,
        table: str,
        data: Any,
        *,
        mode: WriteMode = "append",
        key: list[str] | str | None = None,
        where: str | BooleanExpression | None = None,
        partition_by: list[tuple[str, str]] | None = None,
        message: str | None = None,
    ) -> WriteResult:
        """Write `data` to `table` on branch `ref` as one commit; the result names the commit."""
        ...

    def drop_table(self, ref: str, table: str, message: str | None = None) -> str | None:
        """Drop `table` from branch `ref` as one commit; returns the commit id."""
        ...

    def maintain(
        self,
        *,
        older_than: timedelta = timedelta(days=7),
        retain_last: int = 5,
        grace: timedelta = timedelta(hours=24),
        dry_run: bool = False,
        branches: Iterable[str] | None = None,
    ) -> MaintenanceReport:
        """Expire old snapshots and delete files no ref reaches (what each profile can do safely)."""
        ...


__all__ = [
    "DEFAULT_BRANCHES",
    "DEFAULT_NAMESPACES",
    "PROTECTED_BRANCH",
    "Commit",
    "Ref",
    "ResolvedRef",
    "TableState",
    "VersionedLake",
]
