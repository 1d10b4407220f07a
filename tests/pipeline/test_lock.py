"""The run lock: one run at a time, a clear message naming the holder, no stale locks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from workbench.errors import LockedError
from workbench.pipeline.lock import RunLock
from workbench.settings import Settings

_HOLDER = """
import sys, time
from pathlib import Path
from workbench.pipeline.lock import RunLock
lock = RunLock(Path(sys.argv[1]))
lock.acquire(run_id="20261128T101500Z-abcdef")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
lock.release()
"""


def _hold_in_child(lock: RunLock, seconds: float) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(lock.path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "held"
    return child


def test_second_acquirer_in_process_gets_a_clear_message(run_home: Settings) -> None:
    first = RunLock.for_pipeline(run_home)
    holder = first.acquire(run_id="20261128T101500Z-123456")
    try:
        with pytest.raises(LockedError) as caught:
            RunLock.for_pipeline(run_home).acquire()
        message = str(caught.value)
        assert f"pid {os.getpid()}" in message
        assert holder.started_at.isoformat(timespec="seconds") in message
        assert "run 20261128T101500Z-123456" in message
        assert "another pipeline run is in progress" in message
    finally:
        first.release()
    second = RunLock.for_pipeline(run_home)
    second.acquire()
    second.release()
    assert not first.info_path.exists()


def test_lock_held_by_another_process_and_freed_when_it_is_killed(run_home: Settings) -> None:
    lock = RunLock.for_pipeline(run_home)
    child = _hold_in_child(lock, 60)
    try:
        with pytest.raises(LockedError, match=f"pid {child.pid} "):
            lock.acquire()
        assert lock.holder() is not None and lock.holder().pid == child.pid  # type: ignore[union-attr]
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    lock.acquire()  # the kernel released the dead holder's lock: nothing stale
    assert lock.held
    lock.release()


def test_bounded_wait_for_a_run_in_progress(run_home: Settings) -> None:
    lock = RunLock.for_pipeline(run_home)
    child = _hold_in_child(lock, 1.0)
    try:
        started = time.monotonic()
        lock.acquire(wait_s=20)
        assert time.monotonic() - started > 0.3
        lock.release()
    finally:
        child.kill()
        child.wait(timeout=10)


def test_context_manager_releases_on_error(run_home: Settings) -> None:
    lock = RunLock.for_pipeline(run_home)
    with pytest.raises(RuntimeError), lock:
        assert lock.held
        raise RuntimeError("task failed")
    assert not lock.held
    with RunLock.for_pipeline(run_home) as again:
        assert again.held
