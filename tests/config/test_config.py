"""Strict configuration: sites.yaml, publish.yaml and env.yaml are checked against their schemas;
every mistake is one line naming the file, the line and the key. A wrong sites file never falls
back to the demo server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from workbench.config import ConfigError, validate_env, validate_publish, validate_sites

SITE = "sites:\n  - id: alice\n    url: http://127.0.0.1:9/alice\n"

BAD_SITES = [
    ("site:\n  - id: a\n    url: http://x\n", ":1: site: unknown key (allowed: sites)"),
    ("", "the file is empty"),
    ("# only a comment\n", "the file is empty"),
    ("sites: []\n", "sites: List should have at least 1 item"),
    ("- id: a\n", ":1: expected a top-level `sites:` list"),
    (SITE + "    overlap_minuts: 5\n", ":4: sites[0].overlap_minuts: unknown key"),
    (SITE + "    overlap_minutes: soon\n", ":4: sites[0].overlap_minutes"),
    (SITE + "    auth: password\n", ":4: sites[0].auth"),
    (SITE + "    audit:\n      max_gap_hourz: 3\n", ":5: sites[0].audit.max_gap_hourz: unknown key"),
    ("sites:\n  - url: http://x\n", ":2: sites[0].id: required key is missing"),
    ("sites:\n  - id: a\n   url: [\n", "not valid YAML"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_SITES)
def test_bad_sites_files_are_one_line_naming_file_line_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "sites.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        validate_sites(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)) and expected in message, message


def test_a_site_may_carry_audit_limits(tmp_path: Path) -> None:
    from workbench.ingest.sites import load_sites

    path = tmp_path / "sites.yaml"
    path.write_text(SITE + "    audit:\n      max_gap_hours: 3\n      gap_severity: fail\n")
    (site,) = load_sites(path)
    assert site.audit == {"max_gap_hours": 3, "gap_severity": "fail"}


def test_the_shipped_files_are_valid() -> None:
    validate_env(ROOT / "env.yaml")
    validate_publish(ROOT / "publish.yaml")
    validate_sites(ROOT / "sites.example.yaml")


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "publish.yaml",
            "schema: marts\ntables:\n  - name: a\n    primary_keys: [x]\n",
            ":4: tables[0].primary_keys: unknown key",
        ),
        ("publish.yaml", "schema: marts\ntable:\n  - a\n", ":2: table: unknown key"),
        ("publish.yaml", "", "the file is empty"),
        ("env.yaml", "products: x\nbranchh: dev\n", ":2: branchh: unknown key"),
        ("env.yaml", "products: x\naudit:\n  max_gap_hours: x\n", ":3: audit.max_gap_hours"),
        ("env.yaml", "products: x\naudit:\n  max_stale_hours: 3\n", ":3: audit.max_stale_hours: unknown key"),
    ],
)
def test_bad_publish_and_env_files(tmp_path: Path, name: str, text: str, expected: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    validate = validate_publish if name == "publish.yaml" else validate_env
    with pytest.raises(ConfigError) as info:
        validate(path)
    assert expected in str(info.value) and "\n" not in str(info.value), str(info.value)


@pytest.mark.parametrize("text", ["site:\n  - id: a\n    url: http://x\n", ""])
def test_a_wrong_sites_file_never_ingests_the_demo_patients(tmp_path: Path, text: str) -> None:
    config = tmp_path / "sites.yaml"
    config.write_text(text)
    home = tmp_path / "home"
    proc = run_cli("ingest", "--branch", "dev", "--config", str(config), home=home)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and str(config) in proc.stderr
    assert run_cli("tables", "--ref", "dev", home=home, check=True).stdout == ""
