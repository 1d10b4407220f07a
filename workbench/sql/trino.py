"""The stack profile's SQL engine: a Trino session bound to a ref of the Nessie lake.

Every table of the ref is ``schema.table`` (the session's default catalog is the ref's Iceberg
catalog). A branch reads live through a catalog on ``/iceberg/<branch>`` (``lake`` for main); a tag,
a commit or an ``as_of`` time reads through a dynamic catalog pinned to ``<ref>@<hash>``, created on
first use and dropped when the session closes. Time travel keeps the syntax of the embedded engine:

    select * from raw.glucose_entries for version as of 123456789
    select * from raw.glucose_entries for timestamp as of timestamp '2026-11-01 10:00:00'

Nessie's catalog serves only the current snapshot of each table version, so both are mapped onto
Nessie history: the commit that produced that snapshot id / the newest commit at that time, read
through a catalog pinned to it.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pyarrow as pa

from workbench.errors import QueryError, StackError, TableNotFoundError
from workbench.lake.api import MAIN_BRANCH
from workbench.settings import Settings
from workbench.sql.duckdb import _IDENT, _TS_RE, _VERSION_RE, _unquote, parse_timestamp

_MAIN_CATALOG = "lake"
_NOT_FOUND_RE = re.compile(r"Table '(?P<cat>[^.']+)\.(?P<name>[^']+)' does not exist")


def _q(ref: str) -> str:
    """A ref name as one path segment of Nessie's Iceberg REST prefix ('/' encoded)."""
    return quote(ref, safe="")


def _catalog_name(kind: str, ref: str, pin: str = "") -> str:
    digest = hashlib.sha256(f"{ref}@{pin}".encode()).hexdigest()[:10]
    clean = re.sub(r"[^a-z0-9]+", "_", ref.lower()).strip("_")[:30]
    return f"lake_{kind}_{clean}_{digest}"


class TrinoSession:
    """`workbench.sql.engine.SqlSession` on Trino (see the module docstring)."""

    def __init__(self, lake: Any, ref: str, settings: Settings, as_of: datetime | None = None) -> None:
        self.lake = lake
        self.ref = ref
        self.settings = settings
        self.as_of = as_of
        self._pinned: set[str] = set()
        self._lock = threading.RLock()
        self._conn: Any = None
        self._catalog: str | None = None
        self._types: list[str] = []  # Trino types of the last result's columns

    # ---- catalogs --------------------------------------------------------------------------
    def _properties(self, prefix: str) -> dict[str, str]:
        """The main catalog's properties (``stack/trino/etc/catalog/lake.properties``) with another
        prefix: secrets stay ``${ENV:...}`` references that Trino resolves from its own environment,
        so no key is part of the statement Trino records."""
        return {**lake_catalog_properties(), "iceberg.rest-catalog.prefix": prefix}

    def _ensure_catalog(self, name: str, prefix: str, pinned: bool) -> str:
        if name == _MAIN_CATALOG:
            return name
        properties = self._properties(prefix)
        connector = properties.pop("connector.name")
        props = ", ".join(f"\"{k}\" = '{v.replace(chr(39), chr(39) * 2)}'" for k, v in properties.items())
        try:
            self._execute(f'create catalog "{name}" using {connector} with ({props})', raw=True)
        except QueryError as exc:
            if "already exists" not in str(exc):
                raise
        if pinned:
            self._pinned.add(name)
        return name

    def catalog_for(self, ref: str | None = None, commit: str | None = None, as_of: datetime | None = None) -> str:
        """The Trino catalog showing `ref` (pinned to `commit` or `as_of` when given)."""
        ref = ref or self.ref
        resolved = self.lake.resolve(ref)
        if commit is None and as_of is None and resolved.kind == "branch":
            if resolved.name == MAIN_BRANCH:
                return _MAIN_CATALOG
            prefix = _q(resolved.name)
            return self._ensure_catalog(_catalog_name("b", resolved.name, prefix), prefix, pinned=False)
        if as_of is not None:
            base = resolved.name if resolved.kind != "commit" else MAIN_BRANCH
            stamp = as_of.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            prefix = f"{_q(base)}*{stamp}" if resolved.kind == "branch" else f"{_q(base)}@{resolved.commit_id}"
            return self._ensure_catalog(_catalog_name("t", base, stamp), prefix, pinned=True)
        pin = commit or resolved.commit_id
        base = resolved.name if resolved.kind in ("branch", "tag") else MAIN_BRANCH
        return self._ensure_catalog(_catalog_name("c", base, pin), f"{_q(base)}@{pin}", pinned=True)

    # ---- connection ------------------------------------------------------------------------
    def _connection(self) -> Any:
        if self._conn is None:
            import trino

            options = connect_options(self.settings)
            if "verify" in options:
                # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's own CA
                # (psf/requests#3829): a session that ignores the environment verifies against ours
                import requests

                session = requests.Session()
                session.trust_env = False
                session.verify = options.pop("verify")
                options["http_session"] = session
            self._conn = trino.dbapi.connect(**options, request_timeout=600)
        return self._conn

    def _default_catalog(self) -> str:
        if self._catalog is None:
            self._catalog = self.catalog_for(self.ref, as_of=self.as_of)
        return self._catalog

    def _execute(self, sql: str, params: list[Any] | None = None, raw: bool = False) -> tuple[list[str], list[Any]]:
        import trino

        with self._lock:
            conn = self._connection()
            if not raw:
                conn._client_session.catalog = self._default_catalog()
            cursor = conn.cursor()
            try:
                cursor.execute(sql, params or None)
                rows = cursor.fetchall()
                names = [d[0] for d in cursor.description or []]
                self._types = [str(d[1]) for d in cursor.description or []]
            except trino.exceptions.TrinoUserError as exc:
                raise self._user_error(exc) from None
            except trino.exceptions.TrinoQueryError as exc:
                raise QueryError(f"SQL error: {exc.error_name}: {exc.message.splitlines()[0]}") from None
            except trino.exceptions.HttpError as exc:
                if " 401" in str(exc) or " 403" in str(exc):
                    raise StackError(
                        f"Trino at {self.settings.trino_host}:{self.settings.trino_port} refused the login of "
                        f"'{self.settings.trino_user}' ({str(exc)[:60]}); check CASCADE_TRINO_PASSWORD "
                        "(the stack's is in CASCADE_HOME/stack/client.env)"
                    ) from None
                raise StackError(
                    f"Trino at {self.settings.trino_host}:{self.settings.trino_port} is not reachable "
                    f"({exc.__class__.__name__}); start the stack with `cascade stack up`"
                ) from None
            except (trino.exceptions.TrinoConnectionError, OSError) as exc:
                raise StackError(
                    f"Trino at {self.settings.trino_host}:{self.settings.trino_port} is not reachable "
                    f"({exc.__class__.__name__}); start the stack with `cascade stack up`"
                ) from None
            return names, rows

    def _user_error(self, exc: Any) -> Exception:
        message = (exc.message or "").splitlines()[0]
        if exc.error_name in ("TABLE_NOT_FOUND",):
            found = _NOT_FOUND_RE.search(message)
            name = found["name"] if found else message
            return TableNotFoundError(
                f"table {name} does not exist on '{self.ref}'; see `cascade tables --ref {self.ref}`"
            )
        if exc.error_name == "SYNTAX_ERROR":
            return QueryError(f"SQL error: syntax error: {message}")
        return QueryError(f"SQL error: {exc.error_name}: {message}")

    # ---- time travel -----------------------------------------------------------------------
    def rewrite(self, sql: str) -> str:
        """Map `for version as of` / `for timestamp as of` onto catalogs pinned to Nessie commits."""

        def version(m: re.Match[str]) -> str:
            ns, name = _unquote(m["ns"]), _unquote(m["t"])
            wanted = int(m["v"])
            for item in self.lake.table_history(self.ref, f"{ns}.{name}"):
                if item["snapshot_id"] == wanted:
                    return f'"{self.catalog_for(commit=item["commit_id"])}"."{ns}"."{name}"'
            raise QueryError(f"{ns}.{name} has no snapshot {wanted}; see `cascade history {ns}.{name}`")

        def timestamp(m: re.Match[str]) -> str:
            ns, name = _unquote(m["ns"]), _unquote(m["t"])
            when = parse_timestamp(m["ts"])
            for item in self.lake.table_history(self.ref, f"{ns}.{name}"):
                if item["committed_at"] <= when:
                    return f'"{self.catalog_for(commit=item["commit_id"])}"."{ns}"."{name}"'
            raise QueryError(f"{ns}.{name} has no snapshot as of {when.isoformat()} (it was created later)")

        return _TS_RE.sub(timestamp, _VERSION_RE.sub(version, sql))

    # ---- SqlSession ------------------------------------------------------------------------
    def sql_arrow(self, query: str, params: list[Any] | None = None) -> pa.Table:
        names, rows = self._execute(self.rewrite(query), params)
        if not names:
            return pa.table({})
        types = [arrow_type(t) for t in self._types]
        columns: list[Any] = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
        return pa.table({n: _array(list(c), t) for n, c, t in zip(_unique(names), columns, types, strict=True)})

    def sql(self, query: str, params: list[Any] | None = None) -> Any:
        import pandas as pd

        table = self.sql_arrow(query, params)
        return table.to_pandas() if table.num_columns else pd.DataFrame()

    def tables(self) -> list[str]:
        return sorted(self.lake.state(self.ref))

    def close(self) -> None:
        with self._lock:
            for name in sorted(self._pinned):
                with contextlib.suppress(QueryError, StackError):
                    self._execute(f'drop catalog if exists "{name}"', raw=True)
            self._pinned.clear()
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._catalog = None

    def __del__(self) -> None:  # pragma: no cover - best effort; close() is the contract
        if self._pinned:
            with contextlib.suppress(Exception):
                self.close()


def connect_options(settings: Settings) -> dict[str, Any]:
    """How every client reaches Trino (sessions, dbt, Superset): HTTPS with the password and the
    stack's certificate authority when a password is set (Trino accepts passwords over HTTPS only),
    plain HTTP without authentication otherwise (a Trino of your own that has none)."""
    options: dict[str, Any] = {"host": settings.trino_host, "port": settings.trino_port, "user": settings.trino_user}
    if settings.trino_password is None:
        return {**options, "http_scheme": "http"}
    import trino

    auth = trino.auth.BasicAuthentication(settings.trino_user, settings.trino_password.get_secret_value())
    verify: str | bool = str(settings.trino_ca) if settings.trino_ca else True
    return {**options, "http_scheme": "https", "auth": auth, "verify": verify}


def trino_uri(settings: Settings) -> str:
    """The Trino server's base URL (``https://...`` when a password is set)."""
    scheme = "https" if settings.trino_password is not None else "http"
    return f"{scheme}://{settings.trino_host}:{settings.trino_port}"


def lake_catalog_properties() -> dict[str, str]:
    """The properties of the ``lake`` catalog (the one file both launchers give Trino)."""
    from workbench.stack.launcher import repo_stack_dir

    properties = {}
    for line in (repo_stack_dir() / "trino" / "etc" / "catalog" / "lake.properties").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            properties[key.strip()] = value.strip()
    return properties


def branch_catalog(settings: Settings, branch: str) -> str:
    """The (live, kept) Trino catalog of a branch, created when missing — what dbt's trino target uses."""
    from workbench.profiles import open_lake

    session = TrinoSession(open_lake(settings), branch, settings)
    try:
        return session.catalog_for(branch)
    finally:
        session.close()


_SIMPLE_TYPES: dict[str, pa.DataType] = {
    "boolean": pa.bool_(),
    "tinyint": pa.int8(),
    "smallint": pa.int16(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "real": pa.float32(),
    "double": pa.float64(),
    "date": pa.date32(),
    "varbinary": pa.binary(),
    "varchar": pa.string(),
    "char": pa.string(),
    "json": pa.string(),
}
_DECIMAL_RE = re.compile(r"decimal\((\d+),\s*(\d+)\)")


def arrow_type(trino_type: str) -> pa.DataType | None:
    """The Arrow type of a Trino column type (as the DuckDB engine would give it: ``integer`` stays
    int32, ``timestamp(6)`` naive microseconds, ``... with time zone`` UTC); None = infer from values
    (maps, rows and types without a faithful Arrow counterpart)."""
    t = trino_type.strip().lower()
    base = t.split("(", 1)[0].strip()
    if base in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[base]
    if t.startswith("timestamp"):
        return pa.timestamp("us", tz="UTC") if t.endswith("with time zone") else pa.timestamp("us")
    if base == "time" and not t.endswith("with time zone"):
        return pa.time64("us")
    decimal = _DECIMAL_RE.fullmatch(t)
    if decimal:
        return pa.decimal128(int(decimal[1]), int(decimal[2]))
    if base == "array" and t.endswith(")"):
        inner = arrow_type(t[len("array(") : -1])
        return pa.list_(inner) if inner is not None else None
    return None


def _array(values: list[Any], dtype: pa.DataType | None = None) -> pa.Array:
    """An Arrow column from Trino's Python values, typed as Trino declared it (an empty or all-NULL
    result keeps its types); maps with non-text keys (metadata tables) become text."""
    if dtype is not None:
        try:
            return pa.array(values, type=dtype)
        except (pa.ArrowTypeError, pa.ArrowInvalid, TypeError, ValueError):
            pass
    try:
        return pa.array(values)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}_{seen[n] - 1}")
    return out


__all__ = ["TrinoSession", "_IDENT"]
