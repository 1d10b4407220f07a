"""`cascade` commands for the lake: refs, tables, SQL, loading files, maintenance."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from workbench.errors import CascadeError, InputFileError, WriteError

branch_app = typer.Typer(help="List, create and delete branches.", no_args_is_help=True)
tag_app = typer.Typer(help="List, create and delete tags.", no_args_is_help=True)


def _lakehouse(ref: str = "main", as_of: str | None = None) -> Any:
    from workbench.lakehouse import Lakehouse

    return Lakehouse(ref, as_of=as_of)


def _lake() -> Any:
    from workbench.profiles import open_lake
    from workbench.settings import get_settings

    return open_lake(get_settings())


def _print_frame(frame: Any, fmt: str) -> None:
    """Print a DataFrame as a table, CSV or JSON lines."""
    if fmt == "csv":
        sys.stdout.write(frame.to_csv(index=False))
    elif fmt == "json":
        clean = frame.astype(object).where(frame.notna(), None)
        for record in clean.to_dict(orient="records"):
            sys.stdout.write(json.dumps(record, default=_json_value) + "\n")
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(show_lines=False, header_style="bold")
        for column in frame.columns:
            table.add_column(str(column))
        for row in frame.itertuples(index=False):
            table.add_row(*["" if _isnull(v) else str(v) for v in row])
        Console(width=max(120, Console().width)).print(table)
        typer.echo(f"({len(frame)} row{'s' if len(frame) != 1 else ''})")


def _json_value(value: Any) -> Any:
    """JSON for values json does not know: dates/timestamps as ISO text, numpy scalars as numbers."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _isnull(value: Any) -> bool:
    try:
        import pandas as pd

        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


# ---- branches & tags ------------------------------------------------------------------------------
def _ref_commands(kind: str, group: typer.Typer, example: str) -> None:
    """list / create / delete for one kind of ref (branch or tag)."""

    def list_refs() -> None:
        for ref in _lake().refs():
            if ref.kind == kind:
                typer.echo(f"{ref.name}\t{ref.commit_id}")

    def create(
        name: str, from_ref: Annotated[str, typer.Option("--from", help="branch, tag or commit")] = "main"
    ) -> None:
        lake = _lake()
        ref = lake.create_branch(name, from_ref) if kind == "branch" else lake.create_tag(name, from_ref)
        typer.echo(f"created {kind} {ref.name} at {ref.commit_id} (from {from_ref})")

    def delete(name: str) -> None:
        lake = _lake()
        lake.delete_branch(name) if kind == "branch" else lake.delete_tag(name)
        typer.echo(f"deleted {kind} {name}")

    plural = "branches" if kind == "branch" else "tags"
    list_refs.__doc__ = f"List {plural} with their commit.  Example: cascade {kind} list"
    create.__doc__ = (
        f"Create a {kind} from a branch, tag or commit.  Example: cascade {kind} create {example} --from main"
    )
    delete.__doc__ = (
        f"Delete a {kind}{' (never main)' if kind == 'branch' else ''}.  Example: cascade {kind} delete {example}"
    )
    group.command("list")(list_refs)
    group.command("create")(create)
    group.command("delete")(delete)


_ref_commands("branch", branch_app, "experiment")
_ref_commands("tag", tag_app, "v1")


def log(
    ref: Annotated[str, typer.Argument(help="branch, tag or commit")] = "main",
    limit: Annotated[int, typer.Option("--limit", "-n")] = 20,
    fmt: Annotated[str, typer.Option("--format", help="text|json")] = "text",
) -> None:
    """Show commits (id, time, author, message, tables changed).  Example: cascade log dev -n 5"""
    commits = _lake().log(ref, limit)
    for c in commits:
        if fmt == "json":
            typer.echo(json.dumps(c.to_dict()))
            continue
        merge = f" (merge of {c.merge_parent_id})" if c.merge_parent_id else ""
        typer.echo(f"commit {c.id}{merge}")
        typer.echo(f"  {c.created_at:%Y-%m-%d %H:%M:%S} UTC  {c.author}  [{c.operation}]")
        typer.echo(f"  {c.message}")
        if c.tables:
            typer.echo(f"  tables: {', '.join(c.tables)}")


def merge(
    source: str,
    into: Annotated[str, typer.Option("--into", help="target branch")],
    message: Annotated[str | None, typer.Option("--message", "-m")] = None,
) -> None:
    """Merge a branch (or tag/commit) into a branch atomically.  Example: cascade merge dev --into main"""
    commit = _lake().merge(source, into, message)
    if commit is None:
        typer.echo(f"nothing to merge: {into} already has every change of {source}")
    else:
        typer.echo(f"merged {source} into {into}: commit {commit}")


def reset(branch: str, to: Annotated[str, typer.Option("--to", help="commit, tag or branch")]) -> None:
    """Point a branch at an earlier commit.  Example: cascade reset dev --to 1a2b3c4d"""
    commit = _lake().reset(branch, to)
    typer.echo(f"reset {branch} to {commit}")


def tables(ref: Annotated[str, typer.Option("--ref")] = "main") -> None:
    """List the tables on a ref.  Example: cascade tables --ref dev"""
    for name in _lakehouse(ref).tables():
        typer.echo(name)


def history(
    table: str,
    ref: Annotated[str, typer.Option("--ref")] = "main",
    fmt: Annotated[str, typer.Option("--format", help="table|csv|json")] = "table",
) -> None:
    """Snapshots of a table on a ref.  Example: cascade history raw.glucose_entries --ref dev"""
    _print_frame(_lakehouse(ref).history(table), fmt)


def sql(
    query: str,
    ref: Annotated[str, typer.Option("--ref")] = "main",
    as_of: Annotated[str | None, typer.Option("--as-of", help="ISO timestamp (UTC if no zone)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table|csv|json")] = "table",
) -> None:
    """Run SQL on a ref (DuckDB).  Example: cascade sql "select count(*) from raw.glucose_entries" --ref dev"""
    if fmt not in ("table", "csv", "json"):
        raise WriteError(f"unknown format '{fmt}'; use table, csv or json")
    # via Arrow, so DATE columns stay dates (DuckDB's own pandas conversion makes them midnight timestamps)
    _print_frame(_lakehouse(ref, as_of).sql_arrow(query).to_pandas(), fmt)


def load(
    table: str,
    file: Path,
    branch: Annotated[str, typer.Option("--branch")] = "dev",
    mode: Annotated[str, typer.Option("--mode", help="append|overwrite|upsert")] = "append",
    key: Annotated[list[str] | None, typer.Option("--key", help="key column (upsert); repeat for several")] = None,
    message: Annotated[str | None, typer.Option("--message", "-m")] = None,
) -> None:
    """Load a CSV, Parquet or JSON file into a table on a branch.  Example: cascade load raw.notes notes.csv --branch dev"""
    data = read_file(file)
    result = _lakehouse(branch).write(
        table, data, mode=mode, key=key, message=message or f"load {file.name} into {table} ({mode})"
    )
    typer.echo(
        f"{table} on {branch}: {result.rows_written} row(s) written, {result.rows_deleted} replaced/removed "
        f"(commit {result.commit_id})"
    )


def read_file(file: Path) -> Any:
    """Read CSV, Parquet or JSON (array or lines) into Arrow, with clear errors."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.json as pajson
    import pyarrow.parquet as pq

    if not file.is_file():
        raise InputFileError(f"file not found: {file}")
    suffix = file.suffix.lower()
    try:
        if suffix == ".csv":
            return pacsv.read_csv(file)
        if suffix in (".parquet", ".pq"):
            return pq.read_table(file)
        if suffix in (".json", ".jsonl", ".ndjson"):
            text = file.read_text()
            if text.lstrip().startswith("["):
                return pa.Table.from_pylist(json.loads(text))
            return pajson.read_json(file)
    except (pa.ArrowInvalid, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputFileError(f"cannot read {file}: {str(exc).splitlines()[0]}") from None
    raise InputFileError(f"unsupported file type '{suffix}' for {file}; use .csv, .parquet or .json")


def maintain(
    older_than_days: Annotated[float, typer.Option("--older-than-days", help="expire snapshots older than")] = 7,
    retain_last: Annotated[int, typer.Option("--retain-last", help="snapshots always kept per table")] = 5,
    grace_hours: Annotated[float, typer.Option("--grace-hours", help="never delete files younger than")] = 24,
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
) -> None:
    """Expire old snapshots on every branch, then delete files no branch or tag reaches.  Example: cascade maintain --dry-run"""
    report = _lake().maintain(
        older_than=timedelta(days=older_than_days),
        retain_last=retain_last,
        grace=timedelta(hours=grace_hours),
        dry_run=dry_run,
    )
    typer.echo(report.summary())


def register(app: typer.Typer) -> None:
    app.add_typer(branch_app, name="branch")
    app.add_typer(tag_app, name="tag")
    for fn in (log, merge, reset, tables, history, sql, load, maintain):
        app.command(fn.__name__)(fn)


__all__ = ["CascadeError", "read_file", "register"]
