"""Domain exceptions. Each carries a message a user can act on; the CLI prints it as one line."""

from __future__ import annotations


class CascadeError(Exception):
    """Base class for every error a user can cause and fix. The CLI prints `error: <message>`."""

    exit_code = 1


class SettingsError(CascadeError):
    """Invalid configuration (environment, `.env`, config files)."""


class RefError(CascadeError):
    """Unknown, duplicate or protected branch/tag/commit."""


class RefNotFoundError(RefError):
    """A branch, tag or commit that does not exist."""


class MergeConflictError(RefError):
    """Both sides of a merge changed the same tables since their common ancestor."""

    def __init__(self, source: str, target: str, tables: list[str]) -> None:
        self.tables = sorted(tables)
        super().__init__(
            f"merge conflict: {source} and {target} both changed {', '.join(self.tables)} "
            f"since their common ancestor; merge {target} into {source} first or reset one side"
        )


class ReadOnlyRefError(RefError):
    """A write aimed at a tag or a commit."""


class TableNotFoundError(CascadeError):
    """A table that does not exist on the ref."""


class SchemaError(CascadeError):
    """Incompatible schema change (e.g. a column's type cannot be promoted)."""


class WriteError(CascadeError):
    """A write that cannot be done as asked (bad mode, missing key columns, ...)."""


class QueryError(CascadeError):
    """Invalid SQL or a failed query."""


class InputFileError(CascadeError):
    """A file to load that is missing or unreadable."""


class ConcurrencyError(CascadeError):
    """A commit kept losing to concurrent writers after all retries."""


class LockedError(CascadeError):
    """Another run holds the lock."""


class StackError(CascadeError):
    """The native stack (`cascade stack ...`) cannot be installed, started or reached."""
