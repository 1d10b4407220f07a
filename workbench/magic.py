"""IPython `%sql` / `%%sql` magics bound to a Lakehouse ref.

    %load_ext workbench.magic
    %sql_ref dev                                   # choose the ref (default: dev)
    %sql select count(*) from raw.glucose_entries  # -> DataFrame
    %%sql --ref main daily
    select * from marts.mrt_glucose_overview       # result also stored in `daily`

A small magic rather than jupysql: queries must go through the ref-bound session (its views and the
Trino time-travel syntax), which jupysql's SQLAlchemy connections would bypass.
"""

from __future__ import annotations

import shlex
from typing import Any

from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class

from workbench.errors import CascadeError
from workbench.settings import DEV_BRANCH


@magics_class
class SqlMagics(Magics):
    """`%sql`, `%%sql` and `%sql_ref`."""

    def __init__(self, shell: Any, ref: str = DEV_BRANCH) -> None:
        super().__init__(shell)
        self.ref = ref
        self._lakehouses: dict[str, Any] = {}

    def lakehouse(self, ref: str | None = None) -> Any:
        from workbench.lakehouse import Lakehouse

        ref = ref or self.ref
        if ref not in self._lakehouses:
            self._lakehouses[ref] = Lakehouse(ref)
        return self._lakehouses[ref]

    @line_magic
    def sql_ref(self, line: str) -> str:
        """Show or set the ref used by %sql."""
        if line.strip():
            self.lakehouse(line.strip())  # validates the ref
            self.ref = line.strip()
        return self.ref

    @line_cell_magic
    def sql(self, line: str, cell: str | None = None) -> Any:
        """Run SQL on the current ref (or `--ref R`); `%%sql [--ref R] [var]` stores the result in var."""
        args = shlex.split(line) if cell is not None else []
        ref = None
        if "--ref" in args:
            i = args.index("--ref")
            ref = args[i + 1]
            del args[i : i + 2]
        query = cell if cell is not None else line
        try:
            frame = self.lakehouse(ref).sql(query)
        except CascadeError as exc:
            print(f"error: {exc}")
            return None
        if cell is not None and args and self.shell is not None:
            self.shell.user_ns[args[0]] = frame
        return frame


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magics(SqlMagics(ipython))
