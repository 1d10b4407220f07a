"""`cascade run --audit KEY=VALUE`, `--backfill`, and per-site thresholds in sites.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from workbench.errors import CascadeError
from workbench.ingest.sites import load_sites
from workbench.pipeline.runner import env_overrides, parse_assignments
from workbench.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_audit_assignments_are_typed_and_checked() -> None:
    assert parse_assignments(["max_staleness_hours=72", "gap_severity=fail", "max_gap_hours=1.5"]) == {
        "max_staleness_hours": 72,
        "gap_severity": "fail",
        "max_gap_hours": 1.5,
    }
    with pytest.raises(CascadeError, match="unknown threshold"):
        parse_assignments(["max_staleness=3"])
    with pytest.raises(CascadeError, match="expected KEY=VALUE"):
        parse_assignments(["max_staleness_hours"])


def test_run_overrides_reach_the_pipeline_env(run_home: Settings) -> None:
    env = env_overrides(ROOT / "pipeline.yaml", run_home, audit={"max_staleness_hours": 72}, backfill=True)
    assert env["audit"]["max_staleness_hours"] == 72
    assert env["audit"]["max_gap_hours"] == 6  # the others stay as env.yaml says
    assert env["backfill"] is True and env["full_resync"] is True
    assert "audit" not in env_overrides(ROOT / "pipeline.yaml", run_home)


def test_cascade_run_rejects_a_bad_audit_option_with_exit_2(cli_app: typer.Typer, run_home: Settings) -> None:
    result = CliRunner().invoke(cli_app, ["run", "--audit", "nonsense=1"])
    assert result.exit_code == 2
    assert "unknown threshold" in result.output and "Traceback" not in result.output


def test_sites_yaml_takes_per_site_audit_thresholds(tmp_path: Path) -> None:
    path = tmp_path / "sites.yaml"
    path.write_text(
        "sites:\n  - id: alice\n    url: https://ns.example.org\n    audit:\n      max_staleness_hours: 72\n"
        "  - id: bob\n    url: https://ns2.example.org\n"
    )
    alice, bob = load_sites(path)
    assert alice.audit == {"max_staleness_hours": 72} and bob.audit == {}
    path.write_text("sites:\n  - id: alice\n    url: https://ns.example.org\n    audit:\n      stale: 3\n")
    with pytest.raises(CascadeError, match=r"sites.yaml:5: sites\[0\]\.audit\.stale: unknown key"):
        load_sites(path)
