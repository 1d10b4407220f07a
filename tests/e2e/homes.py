"""A lake home for the end-to-end tests, with its environment set for the module and restored after."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from tests.publish.conftest import make_pg_home, remove_pg_home


@contextlib.contextmanager
def e2e_home(**variables: str) -> Iterator[Path]:
    """A home outside pytest's tmp folders (the embedded PostgreSQL's system user must reach its data
    dir; a watchdog stops the server if this process dies), CASCADE_HOME and `variables` set."""
    from workbench.settings import get_settings

    home = make_pg_home()
    values = {"CASCADE_HOME": str(home), "CASCADE_PROFILE": "embedded", **variables}
    saved = {k: os.environ.get(k) for k in [*values, "CASCADE_DEMO_END"]}
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield home
    finally:
        remove_pg_home(home)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
