"""The Prometheus configuration and alert rules: promtool checks them, and runs the unit tests of
every alert (firing and not firing); every alert has tests and a runbook section."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from workbench.monitor.collector import METRICS
from workbench.monitor.prometheus import CONFIG_SOURCE, render_config
from workbench.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
RULES = CONFIG_SOURCE / "rules" / "cascade.yml"
UNIT_TESTS = CONFIG_SOURCE / "tests" / "cascade_test.yml"
PROMTOOL = shutil.which("promtool")

needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="needs Debian's prometheus (.ci/system-deps.sh)")


def _alerts() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


@needs_promtool
def test_promtool_checks_the_rules() -> None:
    proc = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_promtool
def test_promtool_unit_tests_pass() -> None:
    proc = subprocess.run(
        [PROMTOOL, "test", "rules", str(UNIT_TESTS)], capture_output=True, text=True, cwd=UNIT_TESTS.parent
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_promtool
def test_rendered_native_config_is_valid(run_home: Settings, tmp_path: Path) -> None:
    path = render_config(run_home, tmp_path / "prom", exporter="127.0.0.1:1", prometheus="127.0.0.1:2")
    proc = subprocess.run([PROMTOOL, "check", "config", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "prom" / "web.yml").stat().st_mode & 0o077 == 0
    assert "$2b$" in (tmp_path / "prom" / "web.yml").read_text()  # a bcrypt hash, never the password


@needs_promtool
def test_compose_config_is_valid(tmp_path: Path) -> None:
    """The same prometheus.yml with the Compose targets (what the stack mounts)."""
    shutil.copytree(CONFIG_SOURCE, tmp_path / "p")
    shutil.rmtree(tmp_path / "p" / "targets")
    shutil.copytree(CONFIG_SOURCE / "targets" / "compose", tmp_path / "p" / "targets")
    (tmp_path / "p" / "secrets").mkdir()
    for name in ("prometheus-password", "trino-password", "trino-ca.pem"):  # what `cascade monitor up` writes
        (tmp_path / "p" / "secrets" / name).write_text("x")
    proc = subprocess.run(
        [PROMTOOL, "check", "config", str(tmp_path / "p" / "prometheus.yml")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_is_tested_firing_and_not_firing_and_documented() -> None:
    tests = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    runbook = (ROOT / "docs" / "monitoring.md").read_text()
    for alert in _alerts():
        name = alert["alert"]
        mine = [c for c in cases if c["alertname"] == name]
        assert any(c["exp_alerts"] for c in mine), f"{name}: no firing test"
        assert any(not c["exp_alerts"] for c in mine), f"{name}: no not-firing test"
        assert f"### {name}" in runbook, f"{name}: no section in docs/monitoring.md"
        assert alert["annotations"]["runbook"] == f"docs/monitoring.md#{name.lower()}"


def test_rules_use_only_metrics_that_exist() -> None:
    """Every cascade_* name in an expression is exported (by the collector or the API middleware)."""
    from workbench.monitor.api_metrics import LATENCY, REQUESTS

    known = set(METRICS) | {"cascade_api_requests_total", f"{LATENCY._name}_bucket"}
    assert REQUESTS._name == "cascade_api_requests"
    for alert in _alerts():
        for name in re.findall(r"\bcascade_[a-z0-9_]+", alert["expr"]):
            assert name in known, f"{alert['alert']} uses unknown metric {name}"


@needs_promtool
def test_stack_config_scrapes_trino_with_its_password_over_https(run_home: Settings, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    from pydantic import SecretStr

    from workbench.settings import Profile

    update = {"profile": Profile.stack, "trino_password": SecretStr("s3cret-pw"), "trino_ca": ca}
    settings = run_home.model_copy(update=update)
    path = render_config(settings, tmp_path / "prom", exporter="127.0.0.1:1", prometheus="127.0.0.1:2")
    job = next(j for j in yaml.safe_load(path.read_text())["scrape_configs"] if j["job_name"] == "trino")
    assert job["scheme"] == "https" and job["tls_config"] == {"ca_file": "secrets/trino-ca.pem"}
    assert job["basic_auth"] == {"username": settings.trino_user, "password_file": "secrets/trino-password"}
    secret = tmp_path / "prom" / "secrets" / "trino-password"
    assert secret.read_text() == "s3cret-pw" and secret.stat().st_mode & 0o077 == 0
    assert (tmp_path / "prom" / "secrets" / "trino-ca.pem").read_text() == ca.read_text()
    assert "s3cret-pw" not in path.read_text()
    # Compose mounts the same prometheus.yml unrendered: its trino job is this one
    shared = next(
        j
        for j in yaml.safe_load((CONFIG_SOURCE / "prometheus.yml").read_text())["scrape_configs"]
        if j["job_name"] == "trino"
    )
    assert shared == job


def test_compose_scrapes_the_stack_trino_like_the_native_monitor() -> None:
    """Compose's Trino target is the stack's HTTPS port under its service name (on the certificate),
    as the stack's user (the one in Trino's password file)."""
    from workbench.stack import credentials, launcher

    targets = yaml.safe_load((CONFIG_SOURCE / "targets" / "compose" / "trino.yml").read_text())
    assert targets == [{"targets": [f"trino:{launcher.PORTS['trino']}"]}]
    assert "trino" in credentials.TLS_NAMES
    job = next(
        j
        for j in yaml.safe_load((CONFIG_SOURCE / "prometheus.yml").read_text())["scrape_configs"]
        if j["job_name"] == "trino"
    )
    assert job["scheme"] == "https" and job["basic_auth"]["username"] == credentials.TRINO_USER


def test_config_without_the_stack_scrapes_no_trino_over_https(run_home: Settings, tmp_path: Path) -> None:
    path = render_config(run_home, tmp_path / "prom", exporter="127.0.0.1:1", prometheus="127.0.0.1:2")
    job = next(j for j in yaml.safe_load(path.read_text())["scrape_configs"] if j["job_name"] == "trino")
    assert job["scheme"] == "http" and "tls_config" not in job and "password_file" not in job["basic_auth"]
    assert yaml.safe_load((tmp_path / "prom" / "targets" / "trino.yml").read_text()) == []
