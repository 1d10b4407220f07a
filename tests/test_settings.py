"""Settings: profiles, home, one clear error for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli
from workbench.errors import SettingsError
from workbench.settings import load_settings


def test_defaults_and_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CASCADE_HOME", str(tmp_path / "h"))
    s = load_settings()
    assert s.profile.value == "embedded"
    assert s.warehouse_uri == (tmp_path / "h" / "warehouse").resolve().as_uri()
    monkeypatch.setenv("CASCADE_WAREHOUSE", "s3://lake/warehouse/")
    assert load_settings().warehouse_uri == "s3://lake/warehouse"


def test_dotenv_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CASCADE_HOME", raising=False)
    (tmp_path / ".env").write_text(f"CASCADE_HOME={tmp_path / 'from-dotenv'}\n")
    sub = tmp_path / "notebooks"
    sub.mkdir()
    monkeypatch.chdir(sub)  # found in a parent folder too
    assert load_settings().home == tmp_path / "from-dotenv"


def test_unknown_profile_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASCADE_PROFILE", "cloud")
    with pytest.raises(SettingsError, match="CASCADE_PROFILE='cloud'.*embedded.*stack"):
        load_settings()


def test_unwritable_home_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    s = load_settings(home=blocker / "lake")
    with pytest.raises(SettingsError, match="not writable"):
        s.ensure_home()


def test_cli_reports_settings_errors_without_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc = run_cli("tables", home=blocker / "lake")
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: CASCADE_HOME") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
