"""The stack profile's lake: Project Nessie's REST API v2 for refs and commits, PyIceberg's
`RestCatalog` on Nessie's Iceberg REST endpoint (``/iceberg/<ref>``) for tables.

* A commit id is a Nessie commit hash; a commit reached by hash reads through ``/iceberg/<branch>@<hash>``.
* Writes are Iceberg REST commits on the branch; the commit message and author travel as Nessie's
  ``Nessie-Commit-Message`` / ``Nessie-Commit-Authors`` headers, and `write` returns the hash of the
  commit that put the table's new metadata.
* Merges are Nessie merges (all keys or none); conflicting keys are reported like the embedded lake's.
* Nessie's catalog serves only the current Iceberg snapshot of a table version: history and time
  travel go through Nessie commits (`table_history`, ``ref@hash`` catalogs), not snapshot ids.
* `main` is bootstrapped with one commit (the layer namespaces) before `dev` is forked from it: a
  branch forked from an empty `main` could not be merged back (projectnessie/nessie#6447).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from workbench.errors import MergeConflictError, ReadOnlyRefError, RefError, RefNotFoundError, StackError
from workbench.lake.api import (
    DEFAULT_BRANCHES,
    DEFAULT_NAMESPACES,
    MAIN_BRANCH,
    PROTECTED_BRANCH,
    Commit,
    Ref,
    ResolvedRef,
    TableState,
)
from workbench.lake.catalog import load_table
from workbench.settings import Settings

if TYPE_CHECKING:  # pragma: no cover
    from pyiceberg.catalog import Catalog
    from pyiceberg.table.snapshots import Snapshot

    from workbench.lake.maintain import MaintenanceReport
    from workbench.lake.writes import WriteResult

INIT_MESSAGE = "initialize lake"
_PAGE = 250


def _validate_ref_name(name: str) -> None:
    from workbench.lake.ledger import _validate_ref_name as validate

    validate(name)
    if ".." in name:
        raise RefError(f"invalid ref name '{name}': '..' is not allowed")


def _key(elements: list[str]) -> str:
    return ".".join(elements)


def _path(ref: str) -> str:
    return quote(ref, safe="@")


class NessieLake:
    """`VersionedLake` over a Nessie server (see the module docstring)."""

    profile = "stack"

    def __init__(self, settings: Settings, *, bootstrap: bool = True) -> None:
        import httpx

        self.settings = settings
        self.api = settings.nessie_uri.rstrip("/")
        if not self.api.endswith("/api/v2"):
            raise StackError(f"CASCADE_NESSIE_URI must end with /api/v2 (got {settings.nessie_uri})")
        self.base = self.api.removesuffix("/api/v2")
        self.http = httpx.Client(timeout=60, headers=self.auth_headers())
        self._catalogs: dict[str, Any] = {}
        self._write_lock = threading.RLock()
        if bootstrap:
            self.bootstrap()

    # ---- HTTP ------------------------------------------------------------------------------
    def auth_headers(self) -> dict[str, str]:
        """The bearer token Nessie asks for (``CASCADE_NESSIE_TOKEN``; the stack's is in client.env)."""
        token = self.settings.nessie_token
        return {"Authorization": f"Bearer {token.get_secret_value()}"} if token is not None else {}

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self.http.request(method, self.api + path, **kwargs)
        except httpx.HTTPError as exc:
            raise StackError(
                f"Nessie at {self.api} is not reachable ({exc.__class__.__name__}); start the stack with "
                "`cascade stack up` (see `cascade stack status`)"
            ) from None
        if response.status_code in (401, 403):
            raise StackError(
                f"Nessie at {self.api} refused the request ({response.status_code}): "
                + ("its token is not valid; " if self.settings.nessie_token else "it needs a token; ")
                + "set CASCADE_NESSIE_TOKEN (the stack's is in CASCADE_HOME/stack/client.env)"
            )
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"message": response.text[:300], "errorCode": str(response.status_code)}
            return _NessieFailure(response.status_code, body.get("errorCode", ""), body.get("message", ""), body)
        return response.json() if response.content else {}

    def _ok(self, result: Any, what: str) -> Any:
        if isinstance(result, _NessieFailure):
            if result.code == "REFERENCE_NOT_FOUND":
                raise RefNotFoundError(f"{what}: {result.message}; see `cascade branch list`")
            if result.code in ("REFERENCE_ALREADY_EXISTS", "REFERENCE_CONFLICT"):
                raise RefError(f"{what}: {result.message}")
            raise StackError(f"{what}: Nessie answered {result.status} {result.code}: {result.message}")
        return result

    # ---- bootstrap -------------------------------------------------------------------------
    def bootstrap(self) -> None:
        """One commit on `main` (the layer namespaces), then `dev` forked from it."""
        config = self._ok(self._call("GET", "/config"), "reading Nessie's configuration")
        main = self._reference(PROTECTED_BRANCH)
        if main is None:
            raise StackError(f"Nessie has no '{PROTECTED_BRANCH}' branch; was it created with another default branch?")
        empty = main["hash"] == config["noAncestorHash"]
        present = set() if empty else self._namespaces(PROTECTED_BRANCH)
        missing = [ns for ns in DEFAULT_NAMESPACES if ns not in present]
        if missing:
            operations = [
                {"type": "PUT", "key": {"elements": [ns]}, "content": {"type": "NAMESPACE", "elements": [ns]}}
                for ns in missing
            ]
            meta = (
                self._meta(INIT_MESSAGE, "init")
                if empty
                else self._meta(f"add namespaces {', '.join(missing)}", "init")
            )
            result = self._call(
                "POST",
                f"/trees/{PROTECTED_BRANCH}@{main['hash']}/history/commit",
                json={"commitMeta": meta, "operations": operations},
            )
            if isinstance(result, _NessieFailure) and result.code != "REFERENCE_CONFLICT":
                self._ok(result, "bootstrapping main")  # a conflict: another process bootstrapped it
        for branch in DEFAULT_BRANCHES:
            if self._reference(branch) is None:
                head = self._reference(PROTECTED_BRANCH)
                result = self._call("POST", "/trees", params={"name": branch, "type": "BRANCH"}, json=head)
                if isinstance(result, _NessieFailure) and result.code != "REFERENCE_ALREADY_EXISTS":
                    self._ok(result, f"creating {branch}")

    def wipe(self) -> None:
        """A clean lake (tests): every ref but main deleted, main back at its bootstrap commit, dev from it."""
        for ref in self.refs():
            if ref.name != PROTECTED_BRANCH:
                self._delete(ref.name, ref.kind, ref.commit_id)
        history = self.log(PROTECTED_BRANCH)
        init = next((c for c in reversed(history) if c.message == INIT_MESSAGE), None)
        if init is None:
            raise StackError("main has no bootstrap commit; start from an empty Nessie repository")
        head = self._reference(PROTECTED_BRANCH)
        if head is not None and head["hash"] != init.id:
            self._ok(
                self._call(
                    "PUT",
                    f"/trees/{PROTECTED_BRANCH}@{head['hash']}",
                    params={"type": "BRANCH"},
                    json={"type": "BRANCH", "name": PROTECTED_BRANCH, "hash": init.id},
                ),
                "resetting main",
            )
        self._catalogs.clear()
        self.bootstrap()

    def _namespaces(self, ref: str) -> set[str]:
        page = self._ok(self._call("GET", f"/trees/{_path(ref)}/entries", params={"maxRecords": _PAGE}), "listing")
        return {_key(e["name"]["elements"]) for e in page["entries"] if e["type"] == "NAMESPACE"}

    def _meta(self, message: str, operation: str) -> dict[str, Any]:
        return {"message": message, "authors": [self.settings.author], "properties": {"cascade.operation": operation}}

    # ---- refs ------------------------------------------------------------------------------
    def _reference(self, name: str) -> dict[str, Any] | None:
        result = self._call("GET", f"/trees/{_path(name)}")
        if isinstance(result, _NessieFailure):
            if result.status in (400, 404):
                return None
            self._ok(result, f"reading '{name}'")
        return result["reference"]  # type: ignore[no-any-return]

    def refs(self) -> list[Ref]:
        out: list[Ref] = []
        token = None
        while True:
            params: dict[str, Any] = {"maxRecords": _PAGE}
            if token:
                params["pageToken"] = token
            page = self._ok(self._call("GET", "/trees", params=params), "listing refs")
            out += [Ref(r["name"], r["type"].lower(), r["hash"]) for r in page["references"]]
            token = page.get("token")
            if not page.get("hasMore") or not token:
                break
        return sorted(out, key=lambda r: (r.kind, r.name))

    def resolve(self, ref: str) -> ResolvedRef:
        if ref and "@" not in ref and "~" not in ref:
            found = self._reference(ref)
            if found is not None:
                return ResolvedRef(found["name"], found["type"].lower(), found["hash"])
        if len(ref) >= 6 and all(c in "0123456789abcdef" for c in ref.lower()):
            commit = self._find_commit(ref.lower())
            if commit is not None:
                return ResolvedRef(commit, "commit", commit)
        raise RefNotFoundError(
            f"unknown ref '{ref}': no branch, tag or commit has that name; see `cascade branch list`"
        )

    def _find_commit(self, prefix: str) -> str | None:
        if len(prefix) == 64:
            result = self._call("GET", f"/trees/@{prefix}/history", params={"maxRecords": 1})
            return None if isinstance(result, _NessieFailure) else prefix
        matches: set[str] = set()
        for ref in self.refs():
            for commit in self._history(ref.commit_id, None, fetch_all=False):
                if commit["commitMeta"]["hash"].startswith(prefix):
                    matches.add(commit["commitMeta"]["hash"])
        if len(matches) > 1:
            raise RefError(f"commit prefix '{prefix}' is ambiguous; give more characters")
        return next(iter(matches), None)

    def create_branch(self, name: str, from_ref: str = MAIN_BRANCH) -> Ref:
        return self._create(name, "BRANCH", from_ref)

    def create_tag(self, name: str, from_ref: str = MAIN_BRANCH) -> Ref:
        return self._create(name, "TAG", from_ref)

    def _create(self, name: str, kind: str, from_ref: str) -> Ref:
        _validate_ref_name(name)
        source = self.resolve(from_ref)
        if self._reference(name) is not None:
            raise RefError(f"a branch or tag named '{name}' already exists")
        body = {"type": "BRANCH" if source.kind == "branch" else "TAG", "name": source.name, "hash": source.commit_id}
        if source.kind == "commit":
            body = {"type": "DETACHED", "hash": source.commit_id}
        result = self._call("POST", "/trees", params={"name": name, "type": kind}, json=body)
        created = self._ok(result, f"creating {kind.lower()} '{name}'")["reference"]
        return Ref(created["name"], created["type"].lower(), created["hash"])

    def delete_branch(self, name: str) -> None:
        if name == PROTECTED_BRANCH:
            raise RefError("the main branch cannot be deleted")
        self._delete_checked(name, "branch")

    def delete_tag(self, name: str) -> None:
        self._delete_checked(name, "tag")

    def _delete_checked(self, name: str, kind: str) -> None:
        found = self._reference(name)
        if found is None or found["type"].lower() != kind:
            raise RefNotFoundError(f"{kind} '{name}' does not exist; see `cascade {kind} list`")
        self._delete(name, kind, found["hash"])

    def _delete(self, name: str, kind: str, commit: str) -> None:
        self._ok(
            self._call("DELETE", f"/trees/{_path(name)}@{commit}", params={"type": kind.upper()}),
            f"deleting {kind} '{name}'",
        )
        self._catalogs.pop(name, None)

    def reset(self, branch: str, to: str) -> str:
        current = self.resolve(branch)
        if current.kind != "branch":
            raise RefError(f"cannot reset '{branch}': it is a {current.kind}, not a branch")
        target = self.resolve(to)
        self._ok(
            self._call(
                "PUT",
                f"/trees/{_path(branch)}@{current.commit_id}",
                params={"type": "BRANCH"},
                json={"type": "DETACHED", "hash": target.commit_id},
            ),
            f"resetting '{branch}'",
        )
        return target.commit_id

    def merge(self, source: str, into: str, message: str | None = None) -> str | None:
        target = self.resolve(into)
        if target.kind != "branch":
            raise RefError(f"cannot merge into '{into}': it is a {target.kind}, not a branch")
        src = self.resolve(source)
        body = {
            "fromRefName": src.name if src.kind != "commit" else target.name,
            "fromHash": src.commit_id,
            "commitMeta": self._meta(message or f"merge {src.name} into {into}", "merge"),
            "returnConflictAsResult": True,
        }
        result = self._call("POST", f"/trees/{_path(into)}@{target.commit_id}/history/merge", json=body)
        if isinstance(result, _NessieFailure):
            details = result.body.get("details") or {}
            conflicts = [_key(c["key"]["elements"]) for c in details.get("conflicts") or [] if c.get("key")]
            if not conflicts and "changed in conflict" in result.message:
                conflicts = re.findall(r"'([^']+)'", result.message.partition("changed in conflict")[2])
            if result.code == "REFERENCE_CONFLICT" and conflicts:
                raise MergeConflictError(src.name, into, conflicts)
            self._ok(result, f"merging {source} into {into}")
        conflicts = sorted(
            _key(d["key"]["elements"]) for d in result.get("details") or [] if d.get("conflict") is not None
        )
        if conflicts:
            raise MergeConflictError(src.name, into, conflicts)
        if not result.get("wasApplied") or result.get("resultantTargetHash") in (None, target.commit_id):
            return None
        return str(result["resultantTargetHash"])

    # ---- history ---------------------------------------------------------------------------
    def _history(self, ref: str, limit: int | None, *, fetch_all: bool = True) -> Iterator[dict[str, Any]]:
        token, seen = None, 0
        path = f"/trees/@{ref}/history" if _is_hash(ref) else f"/trees/{_path(ref)}/history"
        while True:
            params: dict[str, Any] = {"maxRecords": min(_PAGE, limit - seen) if limit else _PAGE}
            if fetch_all:
                params["fetch"] = "ALL"
            if token:
                params["pageToken"] = token
            page = self._ok(self._call("GET", path, params=params), f"reading the log of '{ref}'")
            for entry in page["logEntries"]:
                yield entry
                seen += 1
                if limit is not None and seen >= limit:
                    return
            token = page.get("token")
            if not page.get("hasMore") or not token:
                return

    def log(self, ref: str = MAIN_BRANCH, limit: int | None = None) -> list[Commit]:
        resolved = self.resolve(ref)
        start = resolved.name if resolved.kind != "commit" else resolved.commit_id
        return [_commit(entry) for entry in self._history(start, limit)]

    def commits_between(self, start: datetime, end: datetime) -> list[tuple[Commit, dict[str, str | None]]]:
        found: dict[str, tuple[Commit, dict[str, str | None]]] = {}
        for ref in self.refs():
            if ref.kind != "branch":
                continue
            for entry in self._history(ref.name, None):
                commit = _commit(entry, branch=ref.name)
                if commit.created_at < start:
                    break
                if commit.created_at <= end and commit.id not in found:
                    found[commit.id] = (commit, _changes(entry))
        return sorted(found.values(), key=lambda item: item[0].created_at)

    def table_history(self, ref: str, table: str) -> list[dict[str, Any]]:
        """Versions of `table` on `ref`, newest first: commit, time, snapshot id and metadata location."""
        resolved = self.resolve(ref)
        start = resolved.name if resolved.kind != "commit" else resolved.commit_id
        out = []
        for entry in self._history(start, None):
            changes = _changes(entry)
            if table not in changes:
                continue
            op = next(o for o in entry["operations"] if _key(o["key"]["elements"]) == table)
            if op["type"] == "DELETE":
                break  # older versions belong to an earlier table of the same name
            out.append(
                {
                    "commit_id": entry["commitMeta"]["hash"],
                    "committed_at": _time(entry["commitMeta"]["commitTime"]),
                    "snapshot_id": op["content"].get("snapshotId"),
                    "metadata_location": op["content"].get("metadataLocation"),
                }
            )
        return out

    def snapshots(self, ref: str, table: str) -> list[Snapshot]:
        """Nessie's catalog serves one snapshot per table version: collect them from its commits."""
        from pyiceberg.io import load_file_io
        from pyiceberg.serializers import FromInputFile

        load_table(self.catalog(ref), table, ref)  # one-line error for an unknown table
        props, out, seen = self.io_properties(), [], set()
        for version in reversed(self.table_history(ref, table)):
            location = version["metadata_location"]
            metadata = FromInputFile.table_metadata(load_file_io(props, location).new_input(location))
            snapshot = metadata.current_snapshot()  # the one time travel can reach (by its commit)
            if snapshot is not None and snapshot.snapshot_id not in seen:
                seen.add(snapshot.snapshot_id)
                out.append(snapshot)
        return sorted(out, key=lambda s: s.timestamp_ms)

    # ---- tables ----------------------------------------------------------------------------
    def io_properties(self) -> dict[str, str]:
        return self.settings.s3_properties()

    def _prefix(self, resolved: ResolvedRef) -> str:
        if resolved.kind == "branch":
            return _path(resolved.name)
        if resolved.kind == "tag":
            return f"{_path(resolved.name)}@{resolved.commit_id}"
        return f"{PROTECTED_BRANCH}@{resolved.commit_id}"

    def catalog(self, ref: str) -> Catalog:
        resolved = self.resolve(ref)
        cache_key = resolved.name if resolved.kind == "branch" else f"@{resolved.commit_id}"
        if cache_key not in self._catalogs:
            self._catalogs[cache_key] = _rest_catalog(self, resolved)
        return self._catalogs[cache_key]  # type: ignore[no-any-return]

    def iceberg_uri(self, ref: str) -> str:
        """The Iceberg REST URI of a ref, pinned to its commit unless it is a branch."""
        return f"{self.base}/iceberg/{self._prefix(self.resolve(ref))}"

    def state(self, ref: str) -> TableState:
        resolved = self.resolve(ref)
        path = f"/trees/{_path(resolved.name)}" if resolved.kind != "commit" else f"/trees/@{resolved.commit_id}"
        if resolved.kind == "tag":
            path = f"/trees/{_path(resolved.name)}@{resolved.commit_id}"
        state: dict[str, str] = {}
        token = None
        while True:
            params: dict[str, Any] = {"content": "true", "maxRecords": _PAGE}
            if token:
                params["pageToken"] = token
            page = self._ok(self._call("GET", path + "/entries", params=params), f"listing the tables of '{ref}'")
            for entry in page["entries"]:
                if entry["type"] == "ICEBERG_TABLE":
                    state[_key(entry["name"]["elements"])] = entry["content"]["metadataLocation"]
            token = page.get("token")
            if not page.get("hasMore") or not token:
                break
        return dict(sorted(state.items()))

    def _writable(self, ref: str) -> ResolvedRef:
        resolved = self.resolve(ref)
        if not resolved.writable:
            raise ReadOnlyRefError(
                f"'{ref}' is a {resolved.kind}; writes go to a branch "
                f"(create one with `cascade branch create NAME --from {ref}`)"
            )
        return resolved

    @contextmanager
    def commit_meta(self, catalog: Any, message: str) -> Iterator[None]:
        """Commits made through `catalog` inside the block carry this message and author."""
        with self._write_lock:
            headers = catalog._session.headers
            headers["Nessie-Commit-Message"] = message.replace("\n", " ")[:1000]
            headers["Nessie-Commit-Authors"] = self.settings.author
            try:
                yield
            finally:
                headers.pop("Nessie-Commit-Message", None)
                headers.pop("Nessie-Commit-Authors", None)

    def write(self, ref: str, table: str, data: Any, *, message: str | None = None, **options: Any) -> WriteResult:
        from dataclasses import replace

        from workbench.lake.writes import write_table

        self._writable(ref)
        catalog = self.catalog(ref)
        before = self.state(ref).get(table)
        mode = options.get("mode", "append")
        with self.commit_meta(catalog, message or f"{mode} {table}"):
            result = write_table(catalog, table, data, message=message, **options)
        after = self.state(ref).get(table)
        commit = self._commit_that_set(ref, table, after) if after != before else None
        if mode == "overwrite" and commit is not None and before is not None:
            # Nessie keeps one snapshot per table version: count from the version before the write
            rows_before, rows_after = self._total_rows(before), self._total_rows(after)
            result = replace(result, rows_deleted=max(0, rows_before + result.rows_written - rows_after))
        return replace(result, commit_id=commit)

    def _total_rows(self, location: str | None) -> int:
        from pyiceberg.io import load_file_io
        from pyiceberg.serializers import FromInputFile

        if location is None:
            return 0
        metadata = FromInputFile.table_metadata(load_file_io(self.io_properties(), location).new_input(location))
        snapshot = metadata.current_snapshot()
        return int((snapshot.summary.get("total-records") if snapshot and snapshot.summary else None) or 0)

    def _commit_that_set(self, ref: str, table: str, location: str | None) -> str | None:
        for entry in self._history(ref, 200):
            for op in entry.get("operations") or []:
                if _key(op["key"]["elements"]) != table:
                    continue
                if (op["type"] == "DELETE" and location is None) or (
                    op["type"] == "PUT" and (op.get("content") or {}).get("metadataLocation") == location
                ):
                    return str(entry["commitMeta"]["hash"])
        return None

    def drop_table(self, ref: str, table: str, message: str | None = None) -> str | None:
        self._writable(ref)
        catalog = self.catalog(ref)
        load_table(catalog, table, ref)
        with self.commit_meta(catalog, message or f"drop {table}"):
            catalog.drop_table(table)
        return self._commit_that_set(ref, table, None)

    def maintain(
        self,
        *,
        older_than: timedelta = timedelta(days=7),
        retain_last: int = 5,
        grace: timedelta = timedelta(hours=24),
        dry_run: bool = False,
        branches: Iterable[str] | None = None,
    ) -> MaintenanceReport:
        """Nothing is expired or deleted on the stack: every Nessie commit of every ref may still be
        read (time travel goes through Nessie history), and only Nessie's GC knows what no commit reaches."""
        from workbench.lake.maintain import MaintenanceReport

        report = MaintenanceReport(dry_run=dry_run)
        report.note = (
            "stack profile: nothing expired or deleted — Nessie commits on every ref keep their files; "
            "reclaim space with Nessie GC (nessie-gc), which knows what no commit reaches"
        )
        return report


class _NessieFailure:
    def __init__(self, status: int, code: str, message: str, body: dict[str, Any]) -> None:
        self.status, self.code, self.message, self.body = status, code, message, body


def _is_hash(ref: str) -> bool:
    return len(ref) == 64 and all(c in "0123456789abcdef" for c in ref)


def _time(text: str) -> datetime:
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}" if frac else head).replace(tzinfo=UTC)


def _changes(entry: dict[str, Any]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for op in entry.get("operations") or []:
        content = op.get("content") or {}
        if op["type"] == "PUT" and content.get("type") == "ICEBERG_TABLE":
            out[_key(op["key"]["elements"])] = content.get("metadataLocation")
        elif op["type"] == "DELETE" and len(op["key"]["elements"]) > 1:
            out[_key(op["key"]["elements"])] = None
    return out


def _commit(entry: dict[str, Any], branch: str | None = None) -> Commit:
    meta = entry["commitMeta"]
    parents = meta.get("parentCommitHashes") or ([entry["parentCommitHash"]] if entry.get("parentCommitHash") else [])
    properties = meta.get("allProperties") or {}
    operation = (properties.get("cascade.operation") or [None])[0] or (meta.get("properties") or {}).get(
        "cascade.operation"
    )
    if operation is None:
        operation = "merge" if len(parents) > 1 else "commit"
    return Commit(
        id=meta["hash"],
        parent_id=parents[0] if parents else None,
        merge_parent_id=parents[1] if len(parents) > 1 else None,
        branch=branch,
        created_at=_time(meta["commitTime"]),
        author=(meta.get("authors") or [meta.get("committer") or ""])[0],
        message=meta.get("message", ""),
        operation=operation,
        tables=tuple(sorted(_changes(entry))),
    )


def _max_field_id(node: Any) -> int:
    """The highest field id in an Iceberg schema's JSON (nested structs, lists and maps included)."""
    best = 0
    if isinstance(node, dict):
        ids = [node.get(k) for k in ("element-id", "key-id", "value-id")]
        if "name" in node:  # a struct field
            ids.append(node.get("id"))
        best = max([best, *(i for i in ids if isinstance(i, int))])
        for value in node.values():
            best = max(best, _max_field_id(value))
    elif isinstance(node, list):
        for value in node:
            best = max(best, _max_field_id(value))
    return best


def _add_last_column_id(payload: Any) -> bool:
    """Nessie 0.99 requires `last-column-id` on add-schema updates; PyIceberg 0.12 no longer sends it."""
    changed = False
    if isinstance(payload, dict):
        if payload.get("action") == "add-schema" and "last-column-id" not in payload:
            payload["last-column-id"] = _max_field_id(payload.get("schema", {}).get("fields", []))
            changed = True
        for value in payload.values():
            changed = _add_last_column_id(value) or changed
    elif isinstance(payload, list):
        for value in payload:
            changed = _add_last_column_id(value) or changed
    return changed


def _nessie_session(session: Any) -> None:
    """Mount an adapter that completes add-schema updates for Nessie on the catalog's HTTP session."""
    import json

    from requests.adapters import HTTPAdapter

    class NessieAdapter(HTTPAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            body = request.body
            if body and b'"add-schema"' in (body if isinstance(body, bytes) else body.encode()):
                payload = json.loads(body)
                if _add_last_column_id(payload):
                    request.body = json.dumps(payload).encode()
                    request.headers["Content-Length"] = str(len(request.body))
            return super().send(request, *args, **kwargs)

    adapter = NessieAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)


def _rest_catalog(lake: NessieLake, resolved: ResolvedRef) -> Any:
    from pyiceberg.catalog.rest import RestCatalog

    uri = f"{lake.base}/iceberg/{lake._prefix(resolved)}"
    props = {**lake.io_properties(), "uri": uri}
    if lake.settings.nessie_token is not None:
        props["token"] = lake.settings.nessie_token.get_secret_value()
    if resolved.writable:
        catalog = RestCatalog(resolved.name, **props)
        _nessie_session(catalog._session)
        return catalog

    class ReadOnlyRestCatalog(RestCatalog):
        def _refuse(self, *args: Any, **kwargs: Any) -> Any:
            raise ReadOnlyRefError(
                f"'{resolved.name}' is a {resolved.kind}, which is read-only; write to a branch "
                f"(create one with `cascade branch create NAME --from {resolved.name}`)"
            )

        commit_table = create_table = drop_table = register_table = create_table_transaction = _refuse  # type: ignore[assignment]

    return ReadOnlyRestCatalog(f"@{resolved.commit_id}", **props)


__all__ = ["INIT_MESSAGE", "NessieLake"]
