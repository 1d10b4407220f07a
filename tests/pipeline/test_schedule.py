"""Scheduling: intervals, crontab lines (print / install), systemd timer units."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from workbench.pipeline.errors import ScheduleError
from workbench.pipeline.schedule import (
    MARKER,
    cron_line,
    cron_schedule,
    install_crontab,
    merge_crontab,
    parse_every,
    run_command,
    systemd_units,
)
from workbench.settings import Settings


@pytest.mark.parametrize(
    ("text", "seconds"), [("15m", 900), ("1h", 3600), ("30s", 30), ("1d", 86400), ("1h30m", 5400), (" 2H ", 7200)]
)
def test_parse_every(text: str, seconds: int) -> None:
    assert parse_every(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "15x", "m15", "0m", "15m and more"])
def test_parse_every_refuses(text: str) -> None:
    with pytest.raises(ScheduleError):
        parse_every(text)


@pytest.mark.parametrize(
    ("seconds", "fields"),
    [(60, "* * * * *"), (900, "*/15 * * * *"), (3600, "0 * * * *"), (6 * 3600, "0 */6 * * *"), (86400, "0 0 * * *")],
)
def test_cron_schedule(seconds: int, fields: str) -> None:
    assert cron_schedule(seconds) == fields


@pytest.mark.parametrize("seconds", [30, 7 * 60, 5 * 3600, 90])
def test_cron_cannot_express(seconds: int) -> None:
    with pytest.raises(ScheduleError):
        cron_schedule(seconds)


def test_run_command_and_cron_line(run_home: Settings, tmp_path: Path) -> None:
    command = run_command(run_home, workdir=tmp_path)
    assert f"cd {tmp_path}" in command and f"CASCADE_HOME={run_home.home}" in command
    assert "PLOOMBER_STATS_ENABLED=false" in command
    assert command.split(" && ")[2].split()[3].endswith("cascade") and " run >> " in command
    line = cron_line(900, command)
    assert line.startswith(f"*/15 * * * * mkdir -p {run_home.runs_dir} && cd ") and line.endswith(MARKER)
    assert "\\%" in cron_line(60, "date +%s")


def test_merge_crontab_replaces_only_our_line() -> None:
    existing = f"MAILTO=me\n0 1 * * * backup\n*/5 * * * * old cascade run {MARKER}\n"
    merged = merge_crontab(existing, f"*/15 * * * * new {MARKER}")
    assert merged == f"MAILTO=me\n0 1 * * * backup\n*/15 * * * * new {MARKER}\n"
    assert merge_crontab(merged, None) == "MAILTO=me\n0 1 * * * backup\n"
    assert merge_crontab("", None) == ""


def test_install_crontab(tmp_path: Path) -> None:
    # a stand-in `crontab` executable that keeps the table in a file, like cron's own does
    table = tmp_path / "table"
    fake = tmp_path / "fake-crontab"
    fake.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "-l" ]; then [ -f {table} ] || {{ echo "no crontab" >&2; exit 1; }}; cat {table};\n'
        f'elif [ "$1" = "-" ]; then cat > {table}; fi\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    install_crontab(f"*/15 * * * * first {MARKER}", crontab=str(fake))
    table.write_text(table.read_text() + "0 2 * * * other\n")
    install_crontab(f"0 * * * * second {MARKER}", crontab=str(fake))
    assert table.read_text() == f"0 2 * * * other\n0 * * * * second {MARKER}\n"
    with pytest.raises(ScheduleError, match="not installed"):
        install_crontab("x", crontab="no-such-crontab-binary")


def test_systemd_units() -> None:
    units = systemd_units(900, "cd /p && cascade run")
    assert set(units) == {"cascade-pipeline.service", "cascade-pipeline.timer"}
    assert "OnUnitActiveSec=900s" in units["cascade-pipeline.timer"]
    assert "ExecStart=/bin/sh -c 'cd /p && cascade run'" in units["cascade-pipeline.service"]


def test_cli_schedule_prints(run_home: Settings, cli_app: typer.Typer) -> None:
    runner = CliRunner()
    result = runner.invoke(cli_app, ["schedule", "--every", "15m"])
    assert result.exit_code == 0 and result.output.startswith("*/15 * * * * ") and MARKER in result.output
    timer = runner.invoke(cli_app, ["schedule", "--every", "7m", "--systemd"])
    assert "OnUnitActiveSec=420s" in timer.output
    bad = runner.invoke(cli_app, ["schedule", "--every", "7m"])
    assert bad.exit_code != 0 and isinstance(bad.exception, ScheduleError)


def test_scheduled_command_runs_in_a_bare_shell(run_home: Settings, tmp_path: Path) -> None:
    import subprocess

    workdir = tmp_path / "project"
    workdir.mkdir()
    command = run_command(run_home, workdir=workdir)
    # cron gives a minimal environment: nothing but PATH
    done = subprocess.run(["/bin/sh", "-c", command], env={"PATH": "/usr/bin:/bin"}, timeout=120, check=False)
    assert done.returncode == 1  # no pipeline.yaml in the project: a clear error, logged
    log = (run_home.runs_dir / "scheduler.log").read_text()
    assert "error: no pipeline.yaml found in" in log and str(workdir) in log
