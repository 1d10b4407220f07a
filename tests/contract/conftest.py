"""The contract suite runs every test once per profile: `embedded` and `stack`.

`embedded` gets a fresh CASCADE_HOME per test. `stack` uses the native stack of `cascade stack up`
(started for the session by `stack_env` when it is not running, and stopped again afterwards); each
test gets a clean lake: every ref but `main` deleted, `main` assigned back to its bootstrap commit
and `dev` forked from it again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.lake.api import DEV_BRANCH

PROFILES = ("embedded", "stack")


@pytest.fixture(params=PROFILES)
def profile(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def lake_settings(profile: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Settings for a clean lake of the profile under test (also set in the environment)."""
    from workbench import profiles
    from workbench.settings import get_settings, load_settings

    for key in ("CASCADE_WAREHOUSE", "CASCADE_S3_ENDPOINT", "CASCADE_S3_ACCESS_KEY_ID", "CASCADE_S3_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CASCADE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CASCADE_PROFILE", profile)
    if profile == "stack":
        for key, value in request.getfixturevalue("stack_env").items():
            monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    profiles.forget_lakes()
    settings = load_settings()
    if profile == "stack":
        from workbench.lake.nessie import NessieLake

        NessieLake(settings).wipe()  # a clean lake: main at its bootstrap commit, dev from it
    yield settings
    get_settings.cache_clear()
    profiles.forget_lakes()


@pytest.fixture
def lh(lake_settings):  # type: ignore[no-untyped-def]
    """A Lakehouse on `dev` of a clean lake of the profile under test."""
    from workbench.lakehouse import Lakehouse

    lakehouse = Lakehouse(DEV_BRANCH, settings=lake_settings)
    yield lakehouse
    lakehouse.close()


def warehouse_files(settings) -> list[str]:  # type: ignore[no-untyped-def]
    """Every file under the lake's warehouse (local folder or S3 prefix)."""
    from pyarrow import fs as pafs

    uri = settings.warehouse_uri
    if uri.startswith("s3://"):
        secret = settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else None
        filesystem = pafs.S3FileSystem(
            access_key=settings.s3_access_key_id,
            secret_key=secret,
            endpoint_override=settings.s3_endpoint,
            region=settings.s3_region,
            force_virtual_addressing=False,
        )
        root = uri.removeprefix("s3://")
    else:
        filesystem, root = pafs.FileSystem.from_uri(uri)
    infos = filesystem.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    return sorted(i.path for i in infos if i.type == pafs.FileType.File)
