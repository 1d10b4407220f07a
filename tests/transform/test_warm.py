"""The layer tasks' warm dbt process (workbench.transform.warm): one process builds every layer of a
run, answers like an in-process build, and exits when idle; CASCADE_DBT_WARM_SECONDS=0 builds in
the caller's process."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _raw_lake() -> None:
    from workbench.demo import raw
    from workbench.lakehouse import Lakehouse

    lh = Lakehouse("dev")
    for name, table in raw.generate(1, 2, start=date(2026, 3, 1), seed=5).tables().items():
        lh.write(name, table, mode="append", message=f"test: {name}")


def test_one_warm_process_builds_the_layers_and_exits_when_idle(
    cascade_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.lakehouse import Lakehouse
    from workbench.settings import get_settings
    from workbench.transform.warm import build_layer, server_pid, socket_path

    monkeypatch.setenv("CASCADE_DBT_WARM_SECONDS", "20")
    get_settings.cache_clear()
    _raw_lake()
    path = socket_path(get_settings())
    assert server_pid(path) is None
    bronze = build_layer("bronze", "dev")
    assert bronze.success, bronze.failures()
    pid = server_pid(path)
    assert pid is not None  # the server waits for the next layer
    silver = build_layer("silver", "dev")
    assert silver.success, silver.failures()
    assert server_pid(path) == pid  # the same warm process built it
    assert {m.table for m in silver.models} == {"silver.fct_glucose_readings"}
    assert silver.tests and all(t.status == "pass" for t in silver.tests)
    rows = Lakehouse("dev").sql("select count(*) as n from silver.fct_glucose_readings")["n"][0]
    assert rows > 400
    deadline = time.monotonic() + 120
    while server_pid(path) is not None and time.monotonic() < deadline:
        time.sleep(1)
    assert server_pid(path) is None and not path.exists()  # gone after 20 s idle


def test_zero_seconds_builds_in_this_process(cascade_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.settings import get_settings
    from workbench.transform.warm import build_layer, server_pid, socket_path

    monkeypatch.setenv("CASCADE_DBT_WARM_SECONDS", "0")
    get_settings.cache_clear()
    _raw_lake()
    result = build_layer("bronze", "dev")
    assert result.success, result.failures()
    assert server_pid(socket_path(get_settings())) is None
