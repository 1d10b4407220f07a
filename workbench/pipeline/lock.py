"""The run lock: at most one pipeline run at a time per `CASCADE_HOME`.

An exclusive `fcntl.flock` on `CASCADE_HOME/locks/<name>.lock`. The kernel releases it when the
holder exits, however it exits, so there are no stale locks. Who holds it (pid, start time, run id)
is written beside it, so a second run fails with a `LockedError` that names the holder.

```python
with RunLock.for_pipeline(run_id="20261128T101500Z-1a2b3c"):
    ...  # the run
```
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO

from workbench.errors import LockedError
from workbench.settings import Settings, get_settings


@dataclass(frozen=True)
class LockHolder:
    """Who holds a run lock."""

    pid: int
    started_at: datetime
    run_id: str | None
    host: str
    command: str

    def describe(self) -> str:
        run = f", run {self.run_id}" if self.run_id else ""
        return (
            f"pid {self.pid} on {self.host} since {self.started_at.isoformat(timespec='seconds')}{run} ({self.command})"
        )


class RunLock:
    """An exclusive, non-blocking (or bounded-wait) inter-process lock with holder information."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.info_path = path.with_name(path.name + ".json")
        self._handle: IO[str] | None = None

    @classmethod
    def for_pipeline(cls, settings: Settings | None = None, name: str = "pipeline") -> RunLock:
        """The lock every pipeline run (manual, `--every` loop, cron) goes through."""
        settings = settings or get_settings()
        return cls(settings.ensure_home() / "locks" / f"{name}.lock")

    @property
    def held(self) -> bool:
        return self._handle is not None

    def acquire(self, run_id: str | None = None, *, wait_s: float = 0.0) -> LockHolder:
        """Take the lock, waiting at most `wait_s` seconds; `LockedError` names the holder."""
        if self._handle is not None:
            raise LockedError(f"this process already holds {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - kept open while the lock is held
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.close()
                    raise LockedError(self._locked_message()) from None
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        self._handle = handle
        holder = LockHolder(
            pid=os.getpid(),
            started_at=datetime.now(UTC),
            run_id=run_id,
            host=socket.gethostname(),
            command=" ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:200],
        )
        tmp = self.info_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({**asdict(holder), "started_at": holder.started_at.isoformat()}))
        tmp.replace(self.info_path)
        return holder

    def release(self) -> None:
        """Release the lock (a no-op when it is not held)."""
        if self._handle is None:
            return
        self.info_path.unlink(missing_ok=True)
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()
        self._handle = None

    def holder(self) -> LockHolder | None:
        """The recorded holder, if any (it may be a moment out of date)."""
        try:
            raw = json.loads(self.info_path.read_text())
            return LockHolder(
                pid=int(raw["pid"]),
                started_at=datetime.fromisoformat(raw["started_at"]),
                run_id=raw.get("run_id"),
                host=str(raw.get("host", "?")),
                command=str(raw.get("command", "?")),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _locked_message(self) -> str:
        holder = self.holder()
        who = holder.describe() if holder else "another process (holder not recorded yet)"
        return (
            f"another pipeline run is in progress: {who}; wait for it to finish "
            f"(the lock is {self.path}, released when that process exits)"
        )

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
