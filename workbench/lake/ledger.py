"""The version store: Nessie-like refs and commits over every table, kept in the catalog's SQLite file.

PyIceberg's `SqlCatalog` keeps one row per table in `iceberg_tables`, keyed by `catalog_name`. We use
one catalog name per *branch*, so a branch's rows are the live pointers (`metadata_location`) of its
tables. Beside them this module keeps:

* `cascade_refs` — branches and tags, each pointing at a commit;
* `cascade_commits` — commits (parent, merge parent, author, time, message);
* `cascade_commit_tables` — per commit, the tables it changed and their new metadata location
  (NULL = dropped). The full state of any commit is its first-parent chain folded newest-first.

Every change of a branch (a table commit, a merge, a reset) runs in ONE SQLite transaction
(`BEGIN IMMEDIATE`) that compares-and-swaps the table pointers, appends the commit and moves the
branch head, so a crash at any point leaves every table of the branch wholly old or wholly new.
Creating a branch copies pointers only (zero-copy).
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pyiceberg.exceptions import CommitFailedException

from workbench.errors import MergeConflictError, RefError, RefNotFoundError
from workbench.lake.api import (  # the neutral types, re-exported for existing imports
    DEFAULT_BRANCHES,
    DEFAULT_NAMESPACES,
    MAIN_BRANCH,
    PROTECTED_BRANCH,
    Commit,
    Ref,
    ResolvedRef,
    TableState,
)

#: Test hook, called inside the write transaction right before COMMIT (used to kill a process there).
before_commit_hook: Callable[[str], None] | None = None

_SCHEMA = """
create table if not exists cascade_refs (
    name text primary key,
    kind text not null check (kind in ('branch', 'tag')),
    commit_id text not null,
    created_at text not null
);
create table if not exists cascade_commits (
    seq integer primary key autoincrement,
    id text not null unique,
    parent_id text,
    merge_parent_id text,
    branch text,
    created_at text not null,
    author text not null,
    message text not null,
    operation text not null
);
create table if not exists cascade_commit_tables (
    commit_id text not null,
    table_key text not null,
    metadata_location text,
    primary key (commit_id, table_key)
);
"""

# The first-parent history of commit `?`, with each commit's distance from it.
_FIRST_PARENT_CHAIN = """
    with recursive chain(id, depth) as (
        select ?, 0
        union all
        select c.parent_id, chain.depth + 1 from cascade_commits c join chain on c.id = chain.id
        where c.parent_id is not null
    )
"""


Change = tuple[str | None, str | None]  # (expected current location, new location); None = absent


_ANCESTRY_RE = re.compile(r"(?:~\d*|\^+)+$")
_ANCESTRY_STEP_RE = re.compile(r"(~)(\d*)|(\^+)")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _split(key: str) -> tuple[str, str]:
    namespace, _, name = key.rpartition(".")
    return namespace, name


class Ledger:
    """Refs and commits in the catalog's SQLite database. Thread-compatible; cheap to create."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)

    # ---- connection ------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.db_path, timeout=60, isolation_level=None)
        con.execute("pragma busy_timeout = 60000")
        return con

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        con = self._connect()
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A serialized write transaction: all or nothing."""
        con = self._connect()
        try:
            con.execute("begin immediate")
            try:
                yield con
            except BaseException:
                con.execute("rollback")
                raise
            con.execute("commit")
        finally:
            con.close()

    # ---- bootstrap ---------------------------------------------------------------------------
    def bootstrap(self) -> None:
        """Create the version-store tables, the root commit, `main`, `dev` and the namespaces."""
        with self._connect() as con:
            con.execute("pragma journal_mode = wal")
        with self._write() as con:
            for stmt in _SCHEMA.strip().split(";"):
                if stmt.strip():
                    con.execute(stmt)
            if con.execute("select count(*) from cascade_refs").fetchone()[0]:
                return
            root = self._insert_commit(
                con, parent=None, branch=MAIN_BRANCH, author="cascade", message="initialize lake", operation="init"
            )
            for branch in DEFAULT_BRANCHES:
                con.execute(
                    "insert into cascade_refs (name, kind, commit_id, created_at) values (?, 'branch', ?, ?)",
                    (branch, root, _now()),
                )
                for namespace in DEFAULT_NAMESPACES:
                    self._ensure_namespace(con, branch, namespace)

    @staticmethod
    def _ensure_namespace(con: sqlite3.Connection, catalog_name: str, namespace: str) -> None:
        con.execute(
            "insert or ignore into iceberg_namespace_properties "
            "(catalog_name, namespace, property_key, property_value) values (?, ?, 'exists', 'true')",
            (catalog_name, namespace),
        )

    # ---- commits -----------------------------------------------------------------------------
    @staticmethod
    def _insert_commit(
        con: sqlite3.Connection,
        *,
        parent: str | None,
        branch: str | None,
        author: str,
        message: str,
        operation: str,
        changes: Mapping[str, str | None] | None = None,
        merge_parent: str | None = None,
    ) -> str:
        created = _now()
        payload = json.dumps([parent, merge_parent, created, author, message, sorted((changes or {}).items())])
        commit_id = hashlib.sha256(f"{payload}{time.perf_counter_ns()}".encode()).hexdigest()[:16]
        con.execute(
            "insert into cascade_commits (id, parent_id, merge_parent_id, branch, created_at, author, message, "
            "operation) values (?, ?, ?, ?, ?, ?, ?, ?)",
            (commit_id, parent, merge_parent, branch, created, author, message, operation),
        )
        for key, location in (changes or {}).items():
            con.execute(
                "insert into cascade_commit_tables (commit_id, table_key, metadata_location) values (?, ?, ?)",
                (commit_id, key, location),
            )
        return commit_id

    def commit_tables(
        self,
        branch: str,
        changes: Mapping[str, Change],
        *,
        author: str,
        message: str,
        operation: str,
    ) -> str:
        """Compare-and-swap table pointers on `branch` and record one commit, atomically.

        Raises PyIceberg's `CommitFailedException` when a pointer moved meanwhile (the caller retries).
        """
        with self._write() as con:
            head = self._branch_head(con, branch)
            for key, (expected, new) in changes.items():
                current = self._pointer(con, branch, key)
                if current != expected:
                    raise CommitFailedException(f"Table has been updated by another process: {key} on {branch}")
                self._set_pointer(con, branch, key, current, new)
            commit_id = self._insert_commit(
                con,
                parent=head,
                branch=branch,
                author=author,
                message=message,
                operation=operation,
                changes={k: v[1] for k, v in changes.items()},
            )
            self._move_head(con, branch, head, commit_id)
            if before_commit_hook is not None:
                before_commit_hook("commit")
        return commit_id

    @staticmethod
    def _pointer(con: sqlite3.Connection, branch: str, key: str) -> str | None:
        namespace, name = _split(key)
        row = con.execute(
            "select metadata_location from iceberg_tables where catalog_name = ? and table_namespace = ? "
            "and table_name = ?",
            (branch, namespace, name),
        ).fetchone()
        return row[0] if row else None

    def _set_pointer(
        self, con: sqlite3.Connection, branch: str, key: str, current: str | None, new: str | None
    ) -> None:
        namespace, name = _split(key)
        if new is None:
            con.execute(
                "delete from iceberg_tables where catalog_name = ? and table_namespace = ? and table_name = ?",
                (branch, namespace, name),
            )
        elif current is None:
            self._ensure_namespace(con, branch, namespace)
            con.execute(
                "insert into iceberg_tables (catalog_name, table_namespace, table_name, metadata_location, "
                "previous_metadata_location, iceberg_type) values (?, ?, ?, ?, null, 'TABLE')",
                (branch, namespace, name, new),
            )
        else:
            con.execute(
                "update iceberg_tables set metadata_location = ?, previous_metadata_location = ? "
                "where catalog_name = ? and table_namespace = ? and table_name = ?",
                (new, current, branch, namespace, name),
            )

    @staticmethod
    def _branch_head(con: sqlite3.Connection, branch: str) -> str:
        row = con.execute("select kind, commit_id from cascade_refs where name = ?", (branch,)).fetchone()
        if row is None:
            raise RefNotFoundError(f"branch '{branch}' does not exist; see `cascade branch list`")
        if row[0] != "branch":
            raise RefError(f"'{branch}' is a tag, not a branch; tags cannot be written to")
        return str(row[1])

    @staticmethod
    def _move_head(con: sqlite3.Connection, branch: str, expected: str, new: str) -> None:
        cur = con.execute(
            "update cascade_refs set commit_id = ? where name = ? and commit_id = ?", (new, branch, expected)
        )
        if cur.rowcount != 1:  # cannot happen under BEGIN IMMEDIATE; kept as a guard
            raise CommitFailedException(f"branch {branch} moved during the commit")

    # ---- reading -----------------------------------------------------------------------------
    def refs(self) -> list[Ref]:
        with self._read() as con:
            rows = con.execute("select name, kind, commit_id from cascade_refs order by kind, name").fetchall()
        return [Ref(*row) for row in rows]

    def resolve(self, ref: str) -> ResolvedRef:
        """A branch name, a tag name, or a commit id (or a unique prefix of at least 6 characters),
        optionally followed by git-style ancestry: `main~1` (first parent), `dev~3`, `v1^`, `main^^`."""
        ancestry = _ANCESTRY_RE.search(ref)
        if ancestry and ancestry.start() > 0:
            base = self.resolve(ref[: ancestry.start()])
            steps = 0
            for tilde, count, carets in _ANCESTRY_STEP_RE.findall(ancestry.group(0)):
                steps += (int(count) if count else 1) if tilde else len(carets)
            chain = self.log(base.commit_id, steps + 1)
            if len(chain) <= steps:
                raise RefNotFoundError(
                    f"unknown ref '{ref}': {ref[: ancestry.start()]} has only {len(chain) - 1} ancestor commit(s)"
                )
            return ResolvedRef(chain[steps].id, "commit", chain[steps].id)
        with self._read() as con:
            row = con.execute("select name, kind, commit_id from cascade_refs where name = ?", (ref,)).fetchone()
            if row:
                return ResolvedRef(*row)
            if len(ref) >= 6 and all(c in "0123456789abcdef" for c in ref.lower()):
                ids = [
                    r[0]
                    for r in con.execute("select id from cascade_commits where id like ? limit 2", (ref.lower() + "%",))
                ]
                if len(ids) == 1:
                    return ResolvedRef(ids[0], "commit", ids[0])
                if len(ids) > 1:
                    raise RefError(f"commit prefix '{ref}' is ambiguous; give more characters")
        raise RefNotFoundError(
            f"unknown ref '{ref}': no branch, tag or commit has that name; see `cascade branch list`"
        )

    def state(self, commit_id: str) -> TableState:
        """Every table and its metadata location as of a commit."""
        sql = (
            _FIRST_PARENT_CHAIN
            + """
            select t.table_key, t.metadata_location
            from cascade_commit_tables t join chain on t.commit_id = chain.id
            order by chain.depth desc
        """
        )
        state: dict[str, str | None] = {}
        with self._read() as con:
            for key, location in con.execute(sql, (commit_id,)):
                state[key] = location  # newer (smaller depth) rows come later and win
        return {k: v for k, v in sorted(state.items()) if v is not None}

    @staticmethod
    def _pointers(con: sqlite3.Connection, branch: str) -> TableState:
        rows = con.execute(
            "select table_namespace || '.' || table_name, metadata_location from iceberg_tables "
            "where catalog_name = ? and metadata_location is not null order by 1",
            (branch,),
        ).fetchall()
        return dict(rows)

    def branch_state(self, branch: str) -> TableState:
        """The live pointers of a branch (equal to the state of its head commit)."""
        with self._read() as con:
            return self._pointers(con, branch)

    def ref_state(self, ref: ResolvedRef) -> TableState:
        return self.branch_state(ref.name) if ref.kind == "branch" else self.state(ref.commit_id)

    def commit(self, commit_id: str) -> Commit:
        with self._read() as con:
            row = con.execute(
                "select id, parent_id, merge_parent_id, branch, created_at, author, message, operation "
                "from cascade_commits where id = ?",
                (commit_id,),
            ).fetchone()
            if row is None:
                raise RefNotFoundError(f"unknown commit '{commit_id}'")
            tables = tuple(
                r[0]
                for r in con.execute(
                    "select table_key from cascade_commit_tables where commit_id = ? order by 1", (commit_id,)
                )
            )
        return _commit_from_row(row, tables)

    def log(self, commit_id: str, limit: int | None = None) -> list[Commit]:
        """First-parent history from a commit, newest first."""
        sql = (
            _FIRST_PARENT_CHAIN
            + """
            select c.id, c.parent_id, c.merge_parent_id, c.branch, c.created_at, c.author, c.message,
                   c.operation, group_concat(t.table_key, ',')
            from chain join cascade_commits c on c.id = chain.id
            left join cascade_commit_tables t on t.commit_id = c.id
            group by c.id order by chain.depth limit ?
        """
        )
        with self._read() as con:
            rows = con.execute(sql, (commit_id, limit if limit is not None else -1)).fetchall()
        return [_commit_from_row(r[:8], tuple(sorted(r[8].split(","))) if r[8] else ()) for r in rows]

    def commits_between(self, start: datetime, end: datetime) -> list[tuple[Commit, dict[str, str | None]]]:
        """Commits on any branch made in [start, end], oldest first, with the table pointers they set."""
        with self._read() as con:
            rows = con.execute(
                "select id, parent_id, merge_parent_id, branch, created_at, author, message, operation "
                "from cascade_commits where created_at >= ? and created_at <= ? order by seq",
                (
                    start.astimezone(UTC).isoformat(timespec="microseconds"),
                    end.astimezone(UTC).isoformat(timespec="microseconds"),
                ),
            ).fetchall()
            out = []
            for row in rows:
                changes = dict(
                    con.execute(
                        "select table_key, metadata_location from cascade_commit_tables where commit_id = ?", (row[0],)
                    ).fetchall()
                )
                out.append((_commit_from_row(row, tuple(sorted(changes))), changes))
        return out

    def ancestors(self, commit_id: str) -> dict[str, int]:
        """Every ancestor (both parents) of a commit, with its sequence number."""
        sql = """
            with recursive anc(id) as (
                select ?
                union
                select p.pid from anc join (
                    select id, parent_id as pid from cascade_commits where parent_id is not null
                    union all
                    select id, merge_parent_id from cascade_commits where merge_parent_id is not null
                ) p on p.id = anc.id
            )
            select c.id, c.seq from anc join cascade_commits c on c.id = anc.id
        """
        with self._read() as con:
            return dict(con.execute(sql, (commit_id,)).fetchall())

    def common_ancestor(self, a: str, b: str) -> str | None:
        left, right = self.ancestors(a), self.ancestors(b)
        common = set(left) & set(right)
        if not common:
            return None
        return max(common, key=lambda c: left[c])

    # ---- ref changes -------------------------------------------------------------------------
    def create_ref(self, name: str, kind: str, source: ResolvedRef) -> Ref:
        """A new branch or tag at `source`'s commit. A branch copies table pointers, never data."""
        _validate_ref_name(name)
        with self._write() as con:
            if con.execute("select 1 from cascade_refs where name = ?", (name,)).fetchone():
                raise RefError(f"a branch or tag named '{name}' already exists")
            commit_id = self._branch_head(con, source.name) if source.kind == "branch" else source.commit_id
            con.execute(
                "insert into cascade_refs (name, kind, commit_id, created_at) values (?, ?, ?, ?)",
                (name, kind, commit_id, _now()),
            )
            if kind == "branch":
                for (namespace,) in con.execute(
                    "select distinct namespace from iceberg_namespace_properties"
                ).fetchall():
                    self._ensure_namespace(con, name, namespace)
                for key, location in self._state_in(con, source, commit_id).items():
                    self._set_pointer(con, name, key, None, location)
        return Ref(name, kind, commit_id)

    def _state_in(self, con: sqlite3.Connection, source: ResolvedRef, commit_id: str) -> TableState:
        if source.kind == "branch":
            return self._pointers(con, source.name)
        return self.state(commit_id)

    def delete_ref(self, name: str, kind: str) -> None:
        if name == PROTECTED_BRANCH:
            raise RefError("the main branch cannot be deleted")
        with self._write() as con:
            row = con.execute("select kind from cascade_refs where name = ?", (name,)).fetchone()
            if row is None or row[0] != kind:
                raise RefNotFoundError(f"{kind} '{name}' does not exist; see `cascade {kind} list`")
            con.execute("delete from cascade_refs where name = ?", (name,))
            if kind == "branch":
                con.execute("delete from iceberg_tables where catalog_name = ?", (name,))
                con.execute("delete from iceberg_namespace_properties where catalog_name = ?", (name,))

    def reset(self, branch: str, target: ResolvedRef) -> str:
        """Point `branch` at `target`'s commit and its tables at that commit's state (no new commit)."""
        with self._write() as con:
            self._branch_head(con, branch)
            commit_id = self._branch_head(con, target.name) if target.kind == "branch" else target.commit_id
            wanted = self._state_in(con, target, commit_id)
            current = self._pointers(con, branch)
            for key in sorted(set(current) | set(wanted)):
                if current.get(key) != wanted.get(key):
                    self._set_pointer(con, branch, key, current.get(key), wanted.get(key))
            con.execute("update cascade_refs set commit_id = ? where name = ?", (commit_id, branch))
            if before_commit_hook is not None:
                before_commit_hook("reset")
        return commit_id

    def merge(self, source: ResolvedRef, target: str, *, author: str, message: str | None = None) -> str | None:
        """Merge `source` into branch `target` across every table, all or nothing.

        Per table: unchanged on the source since the common ancestor → keep the target's; unchanged on
        the target → take the source's; changed on both (differently) → conflict, nothing is merged.
        Returns the merge commit id, or None when there was nothing to merge.
        """
        with self._write() as con:
            target_head = self._branch_head(con, target)
            source_head = self._branch_head(con, source.name) if source.kind == "branch" else source.commit_id
            base = self.common_ancestor(source_head, target_head)
            base_state = self.state(base) if base else {}
            source_state = self._state_in(con, source, source_head)
            target_state = self._state_in(con, ResolvedRef(target, "branch", target_head), target_head)
            changes: dict[str, str | None] = {}
            conflicts: list[str] = []
            for key in sorted(set(base_state) | set(source_state) | set(target_state)):
                b, s, t = base_state.get(key), source_state.get(key), target_state.get(key)
                if s in (b, t):
                    continue
                if t == b:
                    changes[key] = s
                else:
                    conflicts.append(key)
            if conflicts:
                raise MergeConflictError(source.name, target, conflicts)
            if not changes:
                return None
            for key, new in changes.items():
                self._set_pointer(con, target, key, target_state.get(key), new)
            commit_id = self._insert_commit(
                con,
                parent=target_head,
                merge_parent=source_head,
                branch=target,
                author=author,
                message=message or f"merge {source.name} into {target}",
                operation="merge",
                changes=changes,
            )
            self._move_head(con, target, target_head, commit_id)
            if before_commit_hook is not None:
                before_commit_hook("merge")
        return commit_id

    def all_reachable_states(self) -> list[tuple[str, TableState]]:
        """The table state of every ref (branch heads and tags), for maintenance."""
        out = []
        for ref in self.refs():
            resolved = ResolvedRef(ref.name, ref.kind, ref.commit_id)
            out.append((ref.name, self.ref_state(resolved)))
        return out


def _commit_from_row(row: tuple[object, ...], tables: tuple[str, ...]) -> Commit:
    return Commit(
        id=str(row[0]),
        parent_id=row[1],  # type: ignore[arg-type]
        merge_parent_id=row[2],  # type: ignore[arg-type]
        branch=row[3],  # type: ignore[arg-type]
        created_at=datetime.fromisoformat(str(row[4])),
        author=str(row[5]),
        message=str(row[6]),
        operation=str(row[7]),
        tables=tables,
    )


def _validate_ref_name(name: str) -> None:
    import re

    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.\-/]{0,99}", name) or name.endswith((".", "/")):
        raise RefError(f"invalid ref name '{name}': use letters, digits, '_', '-', '.', '/', starting with a letter")
