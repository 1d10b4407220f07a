"""Settings: profiles, home, one clear error for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli
from workbench.errors import SettingsError
from workbench.settings import env_value, load_settings


def test_defaults_and_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CASCADE_HOME", str(tmp_path / "h"))
    s = load_settings()
    assert s.profile.value == "embedded"
    assert s.warehouse_uri == (tmp_path / "h" / "warehouse").resolve().as_uri()
    monkeypatch.setenv("CASCADE_WAREHOUSE", "s3://lake/warehouse/")
    assert load_settings().warehouse_uri == "s3://lake/warehouse"


def test_dotenv_is_read_from_the_working_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CASCADE_HOME", raising=False)
    (tmp_path / ".env").write_text(f"CASCADE_HOME={tmp_path / 'from-dotenv'}\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings().home == tmp_path / "from-dotenv"


def test_dotenv_in_a_parent_folder_is_never_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # the attack: a planted .env in a shared parent (e.g. /tmp) redirects CASCADE_HOME and secrets
    monkeypatch.delenv("CASCADE_HOME", raising=False)
    monkeypatch.delenv("NIGHTSCOUT_X_SECRET", raising=False)
    (tmp_path / ".env").write_text(f"CASCADE_HOME={tmp_path / 'planted'}\nNIGHTSCOUT_X_SECRET=planted\n")
    sub = tmp_path / "work"
    sub.mkdir()
    monkeypatch.chdir(sub)
    assert load_settings().home != tmp_path / "planted"
    assert env_value("NIGHTSCOUT_X_SECRET") is None


def test_dotenv_writable_by_others_is_ignored(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CASCADE_HOME", raising=False)
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"CASCADE_HOME={tmp_path / 'planted'}\n")
    dotenv.chmod(0o666)
    monkeypatch.chdir(tmp_path)
    assert load_settings().home != tmp_path / "planted"


def test_dotenv_in_cascade_home_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".env").write_text("CASCADE_DEMO_SEED=7\nNIGHTSCOUT_HOME_SECRET=s3cret\n")
    monkeypatch.setenv("CASCADE_HOME", str(home))
    monkeypatch.delenv("CASCADE_DEMO_SEED", raising=False)
    monkeypatch.chdir(tmp_path)
    assert load_settings().demo_seed == 7
    assert env_value("NIGHTSCOUT_HOME_SECRET") == "s3cret"


def test_secret_env_needs_a_documented_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from workbench.ingest.errors import SitesConfigError
    from workbench.ingest.sites import load_sites

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "victim")
    with pytest.raises(SettingsError, match="must start with CASCADE_ or NIGHTSCOUT_"):
        env_value("AWS_SECRET_ACCESS_KEY")
    sites = tmp_path / "sites.yaml"
    sites.write_text("sites:\n  - {id: a, url: 'https://evil.example', secret_env: AWS_SECRET_ACCESS_KEY}\n")
    with pytest.raises(SitesConfigError, match="secret_env 'AWS_SECRET_ACCESS_KEY' must name a variable starting"):
        load_sites(sites)


def test_home_is_made_private(tmp_path: Path) -> None:
    parent = tmp_path / "shared"
    parent.mkdir(mode=0o755)
    parent.chmod(0o755)
    home = load_settings(home=parent / "home").ensure_home()
    assert home.stat().st_mode & 0o777 == 0o700
    assert parent.stat().st_mode & 0o777 == 0o755  # a parent is never changed
    (home / "file").write_text("x")
    assert (home / "file").stat().st_mode & 0o777 == 0o600


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
