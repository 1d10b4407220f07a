"""`cascade monitor` / `cascade superset` as users meet them: status when nothing runs, and one plain
line (exit 1, no traceback) when Prometheus is not installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CASCADE = Path(sys.executable).with_name("cascade")


def _run(*args: str, home: Path, path: str | None = None) -> subprocess.CompletedProcess[str]:
    home.mkdir(parents=True, exist_ok=True)  # an existing lake's home, as after `cascade init`
    env = {**os.environ, "CASCADE_HOME": str(home), "CASCADE_PROFILE": "embedded"}
    if path is not None:
        env["PATH"] = path
    return subprocess.run([str(CASCADE), *args], capture_output=True, text=True, env=env, timeout=120)


def test_status_when_nothing_runs(tmp_path: Path) -> None:
    monitor = _run("monitor", "status", home=tmp_path / "home")
    assert monitor.returncode == 0
    assert monitor.stdout.splitlines() == ["prometheus: not running", "exporter: not running"]
    superset = _run("superset", "status", home=tmp_path / "home")
    assert superset.returncode == 0 and superset.stdout.strip() == "superset: not running"
    assert _run("monitor", "down", home=tmp_path / "home").stdout.strip() == "not running"


def test_missing_prometheus_is_one_plain_line(tmp_path: Path) -> None:
    proc = _run("monitor", "up", home=tmp_path / "home", path=str(CASCADE.parent))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: prometheus is not installed: run `apt-get install prometheus` (or `bash .ci/system-deps.sh`)"
    ]
    assert not (tmp_path / "home" / "monitor" / "prometheus.pid").exists()
