"""DuckDB sessions answer times with a zone in UTC whatever the machine's zone (Iceberg stores
`timestamptz` as UTC and refuses an Arrow column stamped with another zone). Run in a child process
whose TZ is far from UTC, through both ways the workbench opens DuckDB: a ref session and the dbt
plugin's connection with a cursor of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

CHILD = textwrap.dedent(
    """
    import json, duckdb
    from workbench.sql.duckdb import RefSession
    from workbench.transform.plugin import Plugin
    from workbench.settings import load_settings

    settings = load_settings(home={home!r}, profile="embedded", warehouse=None)
    query = "select timestamptz '2026-01-01 12:00:00+00' as t"
    local = duckdb.connect().sql(query).to_arrow_table().schema.field("t").type.tz  # plain DuckDB: the machine's
    session = RefSession.__new__(RefSession)
    session.settings = settings
    con = session._new_connection()
    ref_session = con.sql(query).to_arrow_table().schema.field("t").type.tz
    plugin = Plugin.__new__(Plugin)
    plugin.lake = False
    dbt = duckdb.connect()
    plugin.configure_connection(dbt)
    cursor = dbt.cursor()
    print(json.dumps({{"local": local, "ref_session": ref_session,
                       "plugin_cursor": cursor.sql(query).to_arrow_table().schema.field("t").type.tz}}))
    """
)


def test_sessions_are_in_utc_on_a_machine_far_from_it(tmp_path: Path) -> None:
    env = {**os.environ, "TZ": "Pacific/Auckland", "CASCADE_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD.format(home=str(tmp_path))],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    zones = json.loads(done.stdout.strip().splitlines()[-1])
    assert zones["local"] == "Pacific/Auckland"  # the child really is far from UTC
    assert zones["ref_session"] == "UTC"
    assert zones["plugin_cursor"] == "UTC"
