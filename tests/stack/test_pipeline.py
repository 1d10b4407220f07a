"""The stack profile's "done when", end to end: `CASCADE_PROFILE=stack cascade run` on a running native
stack ingests the demo, builds every layer on Trino, audits, promotes dev → main and publishes the marts
to the stack's PostgreSQL; every mart (and every published table) on `main` equals the embedded
profile's for the same pinned demo input, value by value (1e-9).

Real components: the `cascade run` console script in a subprocess (Ploomber, papermill kernels, dlt,
dbt-trino), Nessie, Trino, versitygw and PostgreSQL started by the `stack_home` fixture. The embedded
side is `workbench.demo.lake.build_demo_lake` with the same demo server, seed, size and pinned clock
(ingest, every layer built with dbt-duckdb, merged into main).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import demo_end
from tests.stack.compare import compare_tables, run_dependent

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow
DEMO = {"CASCADE_DEMO_PATIENTS": "2", "CASCADE_DEMO_DAYS": "14", "CASCADE_DEMO_SEED": "42"}


def _pinned_env() -> dict[str, str]:
    return {**DEMO, "CASCADE_DEMO_END": demo_end().isoformat()}


@pytest.fixture(scope="module")
def embedded_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The embedded profile on the same input, its transforms' clock pinned as `cascade run`'s is."""
    from workbench.demo.lake import build_demo_lake
    from workbench.settings import get_settings

    home = tmp_path_factory.mktemp("embedded")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in _pinned_env().items():
            patch.setenv(key, value)
        get_settings.cache_clear()
        build_demo_lake(
            home,
            patients=int(DEMO["CASCADE_DEMO_PATIENTS"]),
            days=float(DEMO["CASCADE_DEMO_DAYS"]),
            seed=int(DEMO["CASCADE_DEMO_SEED"]),
            end=demo_end(),
        )
    get_settings.cache_clear()
    yield home


@pytest.fixture(scope="module")
def stack_run(stack_home: Path, stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:  # type: ignore[type-arg]
    """One `cascade run` on the stack with the demo clock pinned; the client's CASCADE_HOME (run folders,
    ingest state) is its own, the lake and PostgreSQL are the test stack's (wiped first)."""
    from workbench import profiles
    from workbench.settings import get_settings, load_settings

    client_home = tmp_path_factory.mktemp("stack-client")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASCADE_")}
    env.update(stack_env)
    env.update(
        {
            "CASCADE_HOME": str(client_home),
            "CASCADE_PROFILE": "stack",
            **_pinned_env(),
            "PLOOMBER_STATS_ENABLED": "false",
        }
    )
    overrides = {k.removeprefix("CASCADE_").lower(): v for k, v in stack_env.items()}
    settings = load_settings(profile="stack", home=client_home, **overrides)
    profiles.forget_lakes()
    profiles.open_lake(settings).wipe()  # type: ignore[attr-defined]
    exe = Path(sys.executable).with_name("cascade")
    proc = subprocess.run([str(exe), "run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=2400)
    yield {"proc": proc, "settings": settings, "env": env}
    get_settings.cache_clear()
    profiles.forget_lakes()


def test_stack_run_promotes_and_publishes_to_the_stacks_postgres(stack_run: dict) -> None:  # type: ignore[type-arg]
    import psycopg

    from workbench.lakehouse import Lakehouse
    from workbench.publish.publisher import load_config

    proc = stack_run["proc"]
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    for task in ("ingest", "bronze", "silver", "gold", "marts", "audit", "promote", "publish"):
        assert any(line.split()[:2] == [task, "success"] for line in proc.stdout.splitlines()), proc.stdout[-3000:]
    main = Lakehouse("main", settings=stack_run["settings"])
    assert main.log(limit=1)[0].operation == "merge"
    config = load_config()
    with psycopg.connect(stack_run["env"]["CASCADE_POSTGRES_URL"]) as con:
        for spec in config.tables:
            published = con.execute(f'select * from "{config.schema}"."{spec.name}"')  # noqa: S608
            columns = [d.name for d in published.description or []]
            rows = published.fetchall()
            lake = main.sql_arrow(f"select * from {spec.source}")  # noqa: S608
            assert len(rows) == lake.num_rows > 0, spec.name
            assert set(columns) == set(lake.column_names), spec.name
            differences = compare_tables(
                lake.to_pandas(), _frame(rows, columns), left="lake main", right="PostgreSQL", exclude=()
            )
            assert not differences, f"{spec.name}: " + "; ".join(differences[:10])
    main.close()


def _frame(rows: list[tuple], columns: list[str]):  # type: ignore[no-untyped-def, type-arg]
    import pandas as pd

    return pd.DataFrame(rows, columns=columns)


def test_every_mart_on_main_equals_the_embedded_one(stack_run: dict, embedded_home: Path) -> None:  # type: ignore[type-arg]
    from workbench.lakehouse import Lakehouse
    from workbench.publish.publisher import load_config
    from workbench.settings import load_settings

    assert stack_run["proc"].returncode == 0, stack_run["proc"].stdout[-3000:]
    embedded = Lakehouse("main", settings=load_settings(home=embedded_home, profile="embedded", warehouse=None))
    stack = Lakehouse("main", settings=stack_run["settings"])
    marts = {t for t in embedded.tables() if t.startswith("marts.")}
    assert marts and marts == {t for t in stack.tables() if t.startswith("marts.")}
    tables = sorted(marts | {spec.source for spec in load_config().tables})
    problems = {}
    for table in tables:
        here = embedded.sql_arrow(f"select * from {table}")  # noqa: S608
        there = stack.sql_arrow(f"select * from {table}")  # noqa: S608
        assert here.num_rows > 0, table
        types = {f.name: str(f.field_type) for f in embedded.table(table).schema().fields}
        if types != {f.name: str(f.field_type) for f in stack.table(table).schema().fields}:
            problems[table] = [f"Iceberg schemas differ: {types} vs {stack.table(table).schema()}"]
            continue
        differences = compare_tables(
            here.to_pandas(),
            there.to_pandas(),
            left="embedded",
            right="stack",
            exclude=run_dependent(here.column_names),
        )
        if differences:
            problems[table] = differences[:8]
    assert not problems, "\n".join(f"{t}: " + "; ".join(d) for t, d in problems.items())
    stack.close()
