"""Branch-aware PyIceberg catalogs on one SQLite file (the embedded profile).

`BranchCatalog` is a `SqlCatalog` whose catalog name is the branch: its `iceberg_tables` rows are the
branch's table pointers. Every mutation goes through `Ledger.commit_tables`, which swaps the pointer
and records a commit in one SQLite transaction. `CommitCatalog` serves a tag or a commit read-only
from the ledger's recorded state.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NoSuchTableError, TableAlreadyExistsError
from pyiceberg.io import load_file_io
from pyiceberg.serializers import FromInputFile
from pyiceberg.table import CommitTableResponse, Table
from pyiceberg.table.update import TableRequirement, TableUpdate
from pyiceberg.typedef import Identifier

from workbench.errors import ReadOnlyRefError, TableNotFoundError
from workbench.lake.ledger import Ledger, ResolvedRef, TableState
from workbench.settings import Settings

_message: ContextVar[str | None] = ContextVar("cascade_commit_message", default=None)
_last_commit: ContextVar[str | None] = ContextVar("cascade_last_commit", default=None)


def last_commit_id() -> str | None:
    """The id of the last commit this thread/context made through a `BranchCatalog`."""
    return _last_commit.get()


@contextmanager
def commit_message(message: str | None) -> Iterator[None]:
    """Use `message` for the commits made inside the block."""
    token = _message.set(message)
    try:
        yield
    finally:
        _message.reset(token)


def catalog_properties(settings: Settings) -> dict[str, str]:
    return {
        "uri": f"sqlite:///{settings.catalog_db}",
        "warehouse": settings.warehouse_uri,
        **settings.s3_properties(),
    }


def table_key(identifier: str | Identifier) -> str:
    parts = Catalog.identifier_to_tuple(identifier)
    return ".".join(parts)


def _describe(updates: tuple[TableUpdate, ...], key: str) -> tuple[str, str]:
    """A default commit message and operation from the Iceberg updates of a table commit."""
    ops: list[str] = []
    added, total = 0, "?"
    for update in updates:
        snapshot = getattr(update, "snapshot", None)
        if snapshot is not None and snapshot.summary is not None:
            ops.append(snapshot.summary.operation.value)
            added += int(snapshot.summary.get("added-records") or 0)
            total = snapshot.summary.get("total-records") or "?"
    if ops:
        if len(set(ops)) == 1 and ops[0] == "append":
            return f"append {key} (+{added} rows, {total} in all)", "append"
        op = ops[0] if len(set(ops)) == 1 else "overwrite"
        return f"{op} {key} ({total} rows after)", op
    kinds = sorted({type(u).__name__.removesuffix("Update") for u in updates})
    return f"update {key}: {', '.join(kinds) or 'metadata'}", "metadata"


class BranchCatalog(SqlCatalog):
    """A writable catalog bound to one branch; each table commit is one ledger commit."""

    def __init__(self, branch: str, settings: Settings, ledger: Ledger) -> None:
        self.settings = settings
        self.ledger = ledger
        super().__init__(branch, **catalog_properties(settings))

    # All mutations funnel into one place.
    def _swap(self, key: str, expected: str | None, new: str | None, message: str, operation: str) -> str:
        commit_id = self.ledger.commit_tables(
            self.name,
            {key: (expected, new)},
            author=self.settings.author,
            message=_message.get() or message,
            operation=operation,
        )
        _last_commit.set(commit_id)
        return commit_id

    def commit_table(
        self, table: Table, requirements: tuple[TableRequirement, ...], updates: tuple[TableUpdate, ...]
    ) -> CommitTableResponse:
        identifier = table.name()
        key = table_key(identifier)
        try:
            current: Table | None = self.load_table(identifier)
        except NoSuchTableError:
            current = None
        staged = self._update_and_stage_table(current, identifier, requirements, updates)
        if current is not None and staged.metadata == current.metadata:
            return CommitTableResponse(metadata=current.metadata, metadata_location=current.metadata_location)  # type: ignore[call-arg]
        self._write_metadata(staged.metadata, staged.io, staged.metadata_location)
        message, operation = _describe(updates, key)
        if current is None:
            message, operation = f"create {key}" + message.partition(key)[2], "create"
        self._swap(key, current.metadata_location if current else None, staged.metadata_location, message, operation)
        return CommitTableResponse(metadata=staged.metadata, metadata_location=staged.metadata_location)  # type: ignore[call-arg]

    def create_table(self, identifier: str | Identifier, schema: Any, *args: Any, **kwargs: Any) -> Table:
        if self.table_exists(identifier):
            raise TableAlreadyExistsError(f"Table {table_key(identifier)} already exists")
        txn = self.create_table_transaction(identifier, schema, *args, **kwargs)
        txn.commit_transaction()
        return self.load_table(identifier)

    def register_table(self, identifier: str | Identifier, metadata_location: str, overwrite: bool = False) -> Table:
        key = table_key(identifier)
        expected = (
            self.load_table(identifier).metadata_location if overwrite and self.table_exists(identifier) else None
        )
        self._swap(key, expected, metadata_location, f"register {key}", "register")
        return self.load_table(identifier)

    def drop_table(self, identifier: str | Identifier) -> None:
        key = table_key(identifier)
        current = self.load_table(identifier)
        self._swap(key, current.metadata_location, None, f"drop {key}", "drop")

    def rename_table(self, from_identifier: str | Identifier, to_identifier: str | Identifier) -> Table:
        raise NotImplementedError("renaming tables is not supported: write a new table and drop the old one")


class CommitCatalog(SqlCatalog):
    """A read-only catalog showing the tables of a tag or commit."""

    def __init__(self, ref: ResolvedRef, settings: Settings, ledger: Ledger) -> None:
        self.ref = ref
        self.ledger = ledger
        self._state: TableState = ledger.state(ref.commit_id)
        super().__init__(f"@{ref.commit_id}", **catalog_properties(settings))

    def load_table(self, identifier: str | Identifier) -> Table:
        key = table_key(identifier)
        location = self._state.get(key)
        if location is None:
            raise NoSuchTableError(f"Table does not exist: {key}")
        io = load_file_io(properties=self.properties, location=location)
        metadata = FromInputFile.table_metadata(io.new_input(location))
        return Table(
            identifier=Catalog.identifier_to_tuple(identifier),
            metadata=metadata,
            metadata_location=location,
            io=self._load_file_io(metadata.properties, location),
            catalog=self,
        )

    def list_tables(self, namespace: str | Identifier) -> list[Identifier]:
        ns = ".".join(Catalog.identifier_to_tuple(namespace))
        return [tuple(k.rsplit(".", 1)) for k in self._state if k.rsplit(".", 1)[0] == ns]  # type: ignore[misc]

    def commit_table(self, *args: Any, **kwargs: Any) -> CommitTableResponse:
        raise ReadOnlyRefError(
            f"'{self.ref.name}' is a {self.ref.kind}, which is read-only; write to a branch "
            f"(create one with `cascade branch create NAME --from {self.ref.name}`)"
        )

    create_table = commit_table  # type: ignore[assignment]
    drop_table = commit_table  # type: ignore[assignment]
    register_table = commit_table  # type: ignore[assignment]


def load_table(catalog: Catalog, key: str, ref_name: str) -> Table:
    """Load a table or raise a `TableNotFoundError` naming the ref."""
    if "." not in key:
        raise TableNotFoundError(f"table '{key}' must be written as namespace.table, e.g. raw.glucose_entries")
    try:
        return catalog.load_table(key)
    except NoSuchTableError:
        raise TableNotFoundError(
            f"table '{key}' does not exist on '{ref_name}'; see `cascade tables --ref {ref_name}`"
        ) from None
