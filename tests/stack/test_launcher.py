"""`cascade stack`: status of every service, a crashed service restarted by `up`, a kill -9 of Nessie
or Trino failing clearly, and nothing lost after the restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from workbench.errors import StackError
from workbench.stack import launcher

pytestmark = pytest.mark.slow


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("cascade")
    env = {**os.environ, "CASCADE_HOME": str(home)}
    return subprocess.run([str(exe), "stack", *args], capture_output=True, text=True, env=env, timeout=900)


def _wait_dead(pid: int) -> None:
    import psutil

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie":
        time.sleep(0.2)


def test_status_lists_every_service_healthy_with_pid_port_and_memory(stack_home: Path) -> None:
    proc = _cli(stack_home, "status")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()[1:]
    assert [line.split()[0] for line in lines] == ["postgres", "s3", "nessie", "trino"]
    for line in lines:
        service, state, pid, port, rss = line.split()
        assert state == "healthy" and int(pid) > 0 and int(port) > 0 and float(rss) > 1
    logs = _cli(stack_home, "logs", "nessie", "-n", "5")
    assert logs.returncode == 0 and logs.stdout.strip()
    bad = _cli(stack_home, "logs", "nope")
    assert bad.returncode == 1 and bad.stderr.startswith("error: unknown service 'nope'")


def test_kill_9_fails_clearly_and_up_restarts_with_nothing_lost(stack_home: Path, stack_settings) -> None:  # type: ignore[no-untyped-def]
    from workbench import profiles
    from workbench.lakehouse import Lakehouse

    settings = stack_settings
    lake = profiles.open_lake(settings)
    lake.wipe()  # type: ignore[attr-defined]
    dev = Lakehouse("dev", settings=settings)
    dev.write("raw.k", pd.DataFrame({"id": [1, 2, 3]}), message="before the crash")
    assert int(dev.sql("select count(*) as n from raw.k")["n"][0]) == 3

    for service in ("nessie", "trino"):
        record = launcher.StackHome(stack_home).record(service)
        assert record is not None
        os.kill(record.pid, signal.SIGKILL)
        _wait_dead(record.pid)
        status = _cli(stack_home, "status")
        assert status.returncode == 1
        assert any(line.split()[:2] == [service, "crashed"] for line in status.stdout.splitlines())
        assert "cascade stack up" in status.stdout
        with pytest.raises(StackError, match=r"not reachable.*cascade stack up"):
            if service == "nessie":
                dev.write("raw.k", pd.DataFrame({"id": [4]}))
            else:
                Lakehouse("dev", settings=settings).sql("select count(*) from raw.k")
        up = _cli(stack_home, "up")
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"{service}: not running (crashed or killed" in up.stdout
        assert launcher.is_up(stack_home)

    dev = Lakehouse("dev", settings=settings)
    dev.write("raw.k", pd.DataFrame({"id": [4]}), message="after the restart")
    assert sorted(dev.sql("select id from raw.k")["id"]) == [1, 2, 3, 4]  # nothing lost or duplicated
    assert [c.message for c in dev.log(limit=2)] == ["after the restart", "before the crash"]
    dev.close()
