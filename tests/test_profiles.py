"""The profile registry: one place picks lake + engine; missing stack libraries give an install hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench import profiles
from workbench.errors import SettingsError
from workbench.settings import load_settings


def test_embedded_profile_picks_the_embedded_lake_and_duckdb(cascade_home: Path) -> None:
    from workbench.lake.api import VersionedLake
    from workbench.sql.engine import SqlSession

    settings = load_settings(home=cascade_home, profile="embedded")
    lake = profiles.open_lake(settings)
    assert isinstance(lake, VersionedLake) and lake.profile == "embedded"
    assert profiles.open_lake(settings) is lake  # one instance per process and home
    session = profiles.open_session(lake, "main", settings)
    assert isinstance(session, SqlSession)
    assert session.sql_arrow("select 42 as x").to_pylist() == [{"x": 42}]
    session.close()
    assert profiles.dbt_target(settings) == "duckdb"
    assert profiles.dbt_target(load_settings(home=cascade_home, profile="stack")) == "trino"


def test_missing_client_library_names_the_extra_to_install(cascade_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = profiles.PROFILES["stack"]
    monkeypatch.setitem(
        profiles.PROFILES, "stack", profiles.ProfileSpec(**{**stack.__dict__, "requires": ("no_such_module_x1",)})
    )
    with pytest.raises(SettingsError, match=r"needs no_such_module_x1.*pip install -e '\.\[stack\]'"):
        profiles.open_lake(load_settings(home=cascade_home, profile="stack"))


def test_the_embedded_profile_does_not_import_stack_clients(cascade_home: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from workbench.lakehouse import Lakehouse; Lakehouse('main').sql('select 1'); "
        "print(sorted(m for m in ('trino', 'workbench.lake.nessie', 'workbench.sql.trino') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
