"""A real Superset (its own venv, installed once into the cache) on the demo marts published to a
real embedded PostgreSQL, for the whole session."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.superset.helpers import PASSWORD
from workbench.lake.api import MAIN_BRANCH
from workbench.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def superset(demo_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    from workbench.lakehouse import Lakehouse
    from workbench.publish.postgres import EmbeddedPostgres
    from workbench.publish.publisher import load_config, publish
    from workbench.superset import server

    # outside pytest's tmp folders: PostgreSQL runs as its own system user and must reach its data dir
    pg_home = Path(tempfile.mkdtemp(prefix="cascade-superset-pg-"))
    postgres = EmbeddedPostgres(pg_home)
    settings = None
    try:
        url = postgres.url()
        lake_settings = load_settings(home=demo_home, profile="embedded", warehouse=None, postgres_url=None)
        settings = load_settings(
            home=tmp_path_factory.mktemp("superset-home"),
            profile="embedded",
            warehouse=None,
            postgres_url=SecretStr(url),
            superset_port=0,
            superset_password=SecretStr(PASSWORD),
        )
        lake = Lakehouse(MAIN_BRANCH, settings=lake_settings)
        config = load_config(ROOT / "publish.yaml")
        tables = {spec.name: lake.sql_arrow(f"select * from {spec.source}") for spec in config.tables}
        publish(tables, commit_id=lake.log(limit=1)[0].id, config=config, settings=settings)
        server.up(settings, echo=print)
        yield settings
    finally:
        if settings is not None:
            server.down(settings)
        postgres.stop()
        shutil.rmtree(pg_home, ignore_errors=True)
