"""A time-zone correction that empties a day of every patient, on the stack: dbt-trino's delete+insert
deletes the re-cut days (macro `trino__get_incremental_delete_insert_sql`), as the embedded profile's
overwrite by filter does (tests/pipeline/test_time_zone.py, the same scenario)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ingest"))

from ingest_helpers import SECRET, SECRET_ENV  # noqa: E402

from tests.pipeline.test_time_zone import emptied_day_is_deleted_everywhere  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture
def client_home(
    stack_home: Path, stack_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A client CASCADE_HOME of its own (sites.yaml, ingest state) on the test stack's lake (wiped)."""
    from workbench import profiles
    from workbench.settings import get_settings

    for key in [k for k in os.environ if k.startswith("CASCADE_")]:
        monkeypatch.delenv(key)
    for key, value in stack_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CASCADE_PROFILE", "stack")
    monkeypatch.setenv("CASCADE_HOME", str(tmp_path))
    monkeypatch.setenv(SECRET_ENV, SECRET)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    profiles.forget_lakes()
    profiles.open_lake(get_settings()).wipe()  # type: ignore[attr-defined]
    yield tmp_path
    get_settings.cache_clear()
    profiles.forget_lakes()


def test_a_correction_that_empties_a_day_of_every_patient_deletes_it_on_trino(client_home: Path) -> None:
    emptied_day_is_deleted_everywhere(client_home)
