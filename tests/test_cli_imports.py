"""The CLI starts light (issue 10: `cascade --help` <= 0.5 s, `cascade tables` <= 1.5 s; the times are
measured by bench/cli_speed.py, never asserted): what a command imports is checked here instead —
`--help` loads no pydantic, data or engine library, and `tables` reads the ledger without PyArrow,
DuckDB, pandas or SQLAlchemy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("pydantic", "pydantic_settings", "pyarrow", "pandas", "duckdb", "sqlalchemy", "dbt", "fastapi", "psycopg")
PROBE = """
import json, sys
from workbench.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)), file=sys.stderr)
"""


def _loaded(args: list[str], env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args], env=env, capture_output=True, text=True, timeout=120
    )
    return json.loads(done.stderr.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_help_imports_nothing_heavy() -> None:
    assert _loaded(["--help"], dict(os.environ)) == []


def test_tables_reads_the_ledger_without_engines(demo_home: Path) -> None:
    env = {**os.environ, "CASCADE_HOME": str(demo_home), "CASCADE_PROFILE": "embedded"}
    loaded = _loaded(["tables", "--ref", "main"], env)
    assert set(loaded) <= {"pydantic", "pydantic_settings"}, loaded  # settings are pydantic
