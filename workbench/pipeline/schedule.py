"""Scheduling `cascade run`: a crontab line or a systemd user timer (both go through the run lock).

```python
seconds = parse_every("15m")                 # 900
line = cron_line(seconds, command="cd /srv/cascade && cascade run")   # "*/15 * * * * ..."
install_crontab(line)                        # replaces an earlier Cascade line, keeps the rest
```
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from workbench.pipeline.errors import ScheduleError
from workbench.settings import Settings, get_settings

MARKER = "# cascade-pipeline"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_every(text: str) -> int:
    """An interval like `30s`, `15m`, `2h`, `1d` (or combined, `1h30m`) in seconds."""
    cleaned = text.strip().lower()
    parts = re.findall(r"(\d+)\s*([smhd])", cleaned)
    if not parts or re.sub(r"\d+\s*[smhd]", "", cleaned).strip():
        raise ScheduleError(f"{text!r} is not an interval; use e.g. 30s, 15m, 2h, 1d or 1h30m")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ScheduleError(f"{text!r}: the interval must be positive")
    return seconds


def cron_schedule(seconds: int) -> str:
    """The five cron fields for an interval cron can express exactly."""
    if seconds % 60:
        raise ScheduleError("cron runs at most once a minute, in whole minutes; use `cascade run --every`")
    minutes = seconds // 60
    if minutes < 60 and 60 % minutes == 0:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    if minutes % 60 == 0:
        hours = minutes // 60
        if hours < 24 and 24 % hours == 0:
            return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
        if hours == 24:
            return "0 0 * * *"
    raise ScheduleError(
        f"every {seconds // 60} minutes does not divide an hour or a day evenly, so cron cannot express it; "
        "use the systemd timer (--systemd) or `cascade run --every`"
    )


def run_command(settings: Settings | None = None, workdir: Path | None = None) -> str:
    """The shell command a scheduler runs: `cascade run` in the project folder, with CASCADE_HOME
    and Ploomber's telemetry and version check off (cron has none of the shell's environment)."""
    settings = settings or get_settings()
    workdir = (workdir or Path.cwd()).resolve()
    exe = Path(sys.executable).with_name("cascade")
    cascade = str(exe) if exe.exists() else (shutil.which("cascade") or "cascade")
    log = settings.runs_dir / "scheduler.log"
    return (
        f"mkdir -p {shlex.quote(str(log.parent))} && "
        f"cd {shlex.quote(str(workdir))} && CASCADE_HOME={shlex.quote(str(settings.home))} "
        "PLOOMBER_STATS_ENABLED=false PLOOMBER_VERSION_CHECK_DISABLED=true "
        f"{shlex.quote(cascade)} run >> {shlex.quote(str(log))} 2>&1"
    )


def cron_line(seconds: int, command: str) -> str:
    """A crontab line running `command` every `seconds`, tagged so it can be replaced later."""
    return f"{cron_schedule(seconds)} {command.replace('%', chr(92) + '%')} {MARKER}"  # % is special in cron


def merge_crontab(existing: str, line: str | None) -> str:
    """`existing` crontab with earlier Cascade lines removed and `line` added (None: just removed)."""
    kept = [row for row in existing.splitlines() if not row.rstrip().endswith(MARKER)]
    if line is not None:
        kept.append(line)
    return "\n".join(kept) + "\n" if kept else ""


def install_crontab(line: str | None, crontab: str = "crontab") -> str:
    """Write `line` into the user's crontab (replacing an earlier Cascade line); returns the new table."""
    exe = shutil.which(crontab)
    if exe is None:
        raise ScheduleError("`crontab` is not installed here; install cron, or print a systemd timer with --systemd")
    current = subprocess.run([exe, "-l"], capture_output=True, text=True, check=False)
    existing = current.stdout if current.returncode == 0 else ""  # "no crontab for user" exits 1
    merged = merge_crontab(existing, line)
    done = subprocess.run([exe, "-"], input=merged, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ScheduleError(f"crontab refused the new table: {done.stderr.strip()}")
    return merged


def systemd_units(seconds: int, command: str, name: str = "cascade-pipeline") -> dict[str, str]:
    """A systemd user service + timer (file name → content) running `command` every `seconds`."""
    service = (
        "[Unit]\nDescription=Cascade pipeline run\n\n"
        "[Service]\nType=oneshot\n"
        f"ExecStart=/bin/sh -c {shlex.quote(command)}\n"
    )
    timer = (
        f"[Unit]\nDescription=Run the Cascade pipeline every {seconds}s\n\n"
        f"[Timer]\nOnBootSec=60\nOnUnitActiveSec={seconds}s\nPersistent=true\n\n"
        "[Install]\nWantedBy=timers.target\n"
    )
    return {f"{name}.service": service, f"{name}.timer": timer}
