"""The sites file: ids, URLs, time zones, and secrets only by variable name."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.ingest.errors import SitesConfigError
from workbench.ingest.sites import load_sites

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sites.yaml"
    path.write_text(text)
    return path


def test_the_example_file_is_valid() -> None:
    sites = load_sites(ROOT / "sites.example.yaml")
    assert [s.site_id for s in sites] == ["alice", "bob", "demo-p001"]
    assert sites[1].auth == "token" and sites[0].time_zone == "Europe/Berlin"
    assert all(s.secret is None and s.secret_env for s in sites)


def test_secret_is_resolved_from_the_named_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "sites:\n  - {id: a, url: 'https://a.example/', secret_env: NIGHTSCOUT_A_SECRET}\n")
    (site,) = load_sites(path)
    assert site.url == "https://a.example" and site.patient_id == "a" and site.time_zone == "UTC"
    with pytest.raises(SitesConfigError, match="NIGHTSCOUT_A_SECRET"):
        site.with_secret()
    monkeypatch.setenv("NIGHTSCOUT_A_SECRET", "hunter2")
    resolved = site.with_secret()
    assert resolved.secret == "hunter2" and "hunter2" not in repr(resolved)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sites:\n  - {id: a, url: 'https://a', secret: x}\n", "secret_env"),
        ("sites:\n  - {id: A B, url: 'https://a'}\n", "lowercase"),
        ("sites:\n  - {id: a, url: 'ftp://a'}\n", "http"),
        ("sites:\n  - {id: a, url: 'https://a', time_zone: Mars/Base}\n", "time zone"),
        ("sites:\n  - {id: a, url: 'https://a'}\n  - {id: a, url: 'https://b'}\n", "twice"),
        ("sites:\n  - {url: 'https://a'}\n", "id"),
        ("sites: nope\n", "sites:"),
    ],
)
def test_invalid_files_fail_with_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SitesConfigError, match=message) as info:
        load_sites(write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_missing_explicit_file_is_an_error_default_is_empty(tmp_path: Path, cascade_home: Path) -> None:
    with pytest.raises(SitesConfigError, match="does not exist"):
        load_sites(tmp_path / "nope.yaml")
    assert load_sites() == [] or (Path.cwd() / "sites.yaml").is_file()
