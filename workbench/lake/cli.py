"""`cascade` commands for the lake: refs, tables, SQL, loading files, maintenance."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from workbench.cli_options import (
    REF_HELP,
    BranchOption,
    FormatOption,
    LimitOption,
    MessageOption,
    OutputFormat,
    RefOption,
)
from workbench.errors import CascadeError, InputFileError
from workbench.lake.api import DEV_BRANCH, MAIN_BRANCH


class WriteMode(str, Enum):
    append = "append"
    overwrite = "overwrite"
    upsert = "upsert"


branch_app = typer.Typer(help="List, create and delete branches.", no_args_is_help=True)
tag_app = typer.Typer(help="List, create and delete tags.", no_args_is_help=True)


def _lakehouse(ref: str = MAIN_BRANCH, as_of: str | None = None) -> Any:
    from workbench.lakehouse import Lakehouse

    return Lakehouse(ref, as_of=as_of)


def _lake() -> Any:
    from workbench.profiles import open_lake
    from workbench.settings import get_settings

    return open_lake(get_settings())


def _print_frame(frame: Any, fmt: OutputFormat | str) -> None:
    """Print a DataFrame as a table, CSV or one JSON array."""
    fmt = OutputFormat(fmt)
    if fmt is OutputFormat.csv:
        sys.stdout.write(frame.to_csv(index=False))
    elif fmt is OutputFormat.json:
        clean = frame.astype(object).where(frame.notna(), None)
        _print_json(clean.to_dict(orient="records"))
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


def _print_json(records: list[Any]) -> None:
    """One JSON array (strict JSON: null, ISO dates)."""
    sys.stdout.write(json.dumps(records, default=_json_value) + "\n")


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
        name: str, from_ref: Annotated[str, typer.Option("--from", help="branch, tag or commit")] = MAIN_BRANCH
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
    ref: Annotated[str, typer.Argument(help=REF_HELP)] = MAIN_BRANCH,
    limit: LimitOption = 20,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Show commits (id, time, author, message, tables changed).  Example: cascade log dev -n 5"""
    commits = _lake().log(ref, limit)
    if fmt is not OutputFormat.table:
        records = [c.to_dict() for c in commits]
        if fmt is OutputFormat.json:
            _print_json(records)
        else:
            import pandas as pd

            frame = pd.DataFrame(records, columns=list(records[0]) if records else ["id"])
            if "tables" in frame:
                frame["tables"] = frame["tables"].map(" ".join)
            _print_frame(frame, fmt)
        return
    for c in commits:
        merge = f" (merge of {c.merge_parent_id})" if c.merge_parent_id else ""
        typer.echo(f"commit {c.id}{merge}")
        typer.echo(f"  {c.created_at:%Y-%m-%d %H:%M:%S} UTC  {c.author}  [{c.operation}]")
        typer.echo(f"  {c.message}")
        if c.tables:
            typer.echo(f"  tables: {', '.join(c.tables)}")


def merge(
    source: str,
    into: Annotated[str, typer.Option("--into", help="target branch")],
    message: MessageOption = None,
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


def tables(ref: RefOption = MAIN_BRANCH) -> None:
    """List the tables on a ref.  Example: cascade tables --ref dev"""
    lake = _lake()  # the ref's table list is catalog metadata: no SQL engine needed
    names = sorted(lake.state(ref))
    if not names:
        commit = lake.resolve(ref).commit_id
        typer.echo(
            f"no tables on '{ref}' (commit {commit[:12]}); load some with `cascade ingest` or `cascade load`", err=True
        )
    for name in names:
        typer.echo(name)


def history(table: str, ref: RefOption = MAIN_BRANCH, fmt: FormatOption = OutputFormat.table) -> None:
    """Snapshots of a table on a ref.  Example: cascade history raw.glucose_entries --ref dev"""
    _print_frame(_lakehouse(ref).history(table), fmt)


def sql(
    query: str,
    ref: RefOption = MAIN_BRANCH,
    as_of: Annotated[str | None, typer.Option("--as-of", help="ISO timestamp (UTC if no zone)")] = None,
    fmt: FormatOption = OutputFormat.table,
    message: MessageOption = None,
) -> None:
    """Run SQL on a ref (DuckDB).  Example: cascade sql "select count(*) from raw.glucose_entries" --ref dev

    On a branch, `create table … as select`, `insert into`, `delete from` and `drop table` are
    performed as one commit each (Iceberg writes); on a tag or commit they are refused.
    """
    from workbench.sql.writes import run_statement

    result = run_statement(_lakehouse(ref, as_of), query, message=message)
    if result.frame is not None:
        _print_frame(result.frame, fmt)
    else:
        typer.echo(result.summary)


def load(
    table: str,
    file: Path,
    branch: BranchOption = DEV_BRANCH,
    mode: Annotated[WriteMode, typer.Option("--mode", help="append, overwrite or upsert")] = WriteMode.append,
    key: Annotated[list[str] | None, typer.Option("--key", help="key column (upsert); repeat for several")] = None,
    message: MessageOption = None,
) -> None:
    """Load a CSV, Parquet or JSON file into a table on a branch.  Example: cascade load raw.notes notes.csv --branch dev"""
    data = read_file(file)
    result = _lakehouse(branch).write(
        table, data, mode=mode.value, key=key, message=message or f"load {file.name} into {table} ({mode.value})"
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


def diff(
    ref_from: Annotated[str, typer.Argument(metavar="REF1", help=REF_HELP)],
    ref_to: Annotated[str, typer.Argument(metavar="REF2", help=REF_HELP)],
    rows: Annotated[str | None, typer.Option("--rows", help="also list the rows of this table added/removed")] = None,
    limit: LimitOption = 50,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Tables added, removed and changed from REF1 to REF2, with row counts (--rows TABLE: the rows).

    Example: cascade diff main dev --rows raw.glucose_entries
    """
    from workbench.lake.diff import diff_refs, diff_rows

    lake = _lake()
    if rows is not None:
        frame = diff_rows(ref_from, ref_to, rows, limit)
        _print_frame(frame, fmt)
        return
    changes = diff_refs(lake, ref_from, ref_to)
    if fmt is not OutputFormat.table:
        import pandas as pd

        columns = ["table", "change", "rows_from", "rows_to"]
        _print_frame(pd.DataFrame([c.to_dict() for c in changes], columns=columns), fmt)
        return
    if not changes:
        typer.echo(f"no differences between '{ref_from}' and '{ref_to}'")
    for c in changes:
        counts = {
            "added": f"{c.rows_to} rows",
            "removed": f"{c.rows_from} rows",
            "changed": f"{c.rows_from} -> {c.rows_to} rows",
        }[c.change]
        typer.echo(f"{c.change:8} {c.table:40} {counts}")


def show(
    commit: Annotated[str, typer.Argument(help="commit id (or prefix), branch or tag; main~1 = its parent")],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """One commit: id, parents, time, author, message, and the tables it changed with row counts.

    Example: cascade show main~1
    """
    from workbench.lake.diff import diff_refs

    lake = _lake()
    resolved = lake.resolve(commit)
    c = lake.log(resolved.commit_id, 1)[0]
    changes = diff_refs(lake, c.parent_id, c.id) if c.parent_id else []
    if fmt is OutputFormat.json:
        _print_json([{**c.to_dict(), "changes": [x.to_dict() for x in changes]}])
        return
    if fmt is OutputFormat.csv:
        import pandas as pd

        _print_frame(
            pd.DataFrame([x.to_dict() for x in changes], columns=["table", "change", "rows_from", "rows_to"]), fmt
        )
        return
    typer.echo(f"commit {c.id}")
    typer.echo(f"parent {c.parent_id or '-'}" + (f"  merge parent {c.merge_parent_id}" if c.merge_parent_id else ""))
    typer.echo(f"date   {c.created_at:%Y-%m-%d %H:%M:%S} UTC  author {c.author}  [{c.operation}] on {c.branch or '-'}")
    typer.echo(f"\n    {c.message}\n")
    for x in changes:
        before = "-" if x.rows_from is None else x.rows_from
        after = "-" if x.rows_to is None else x.rows_to
        typer.echo(f"  {x.change:8} {x.table:40} {before} -> {after} rows")
    if not changes:
        typer.echo("  (no table changes)" if c.parent_id else "  (first commit)")


def register(app: typer.Typer) -> None:
    app.add_typer(branch_app, name="branch")
    app.add_typer(tag_app, name="tag")
    for fn in (log, show, diff, merge, reset, tables, history, sql, load, maintain):
        app.command(fn.__name__)(fn)


__all__ = ["CascadeError", "read_file", "register"]
