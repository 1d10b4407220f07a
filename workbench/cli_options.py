"""Option definitions shared by every `cascade` command, so the same thing has the same name everywhere.

- `--ref` names a ref you *read* (branch, tag, commit id or prefix, with `~N` / `^` ancestry: `main~1`).
- `--branch` names a branch you *write*.
- `--format` is one of `table`, `csv`, `json` (validated by the parser; `json` is one JSON array).
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

REF_HELP = "branch, tag or commit to read (main~1 = its parent)"


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


RefOption = Annotated[str, typer.Option("--ref", "-r", help=REF_HELP)]
BranchOption = Annotated[str, typer.Option("--branch", "-b", help="branch to write")]
FormatOption = Annotated[OutputFormat, typer.Option("--format", "-f", help="table, csv or json (one JSON array)")]
MessageOption = Annotated[str | None, typer.Option("--message", "-m", help="commit message")]
LimitOption = Annotated[int, typer.Option("--limit", "-n", min=1, help="how many")]
