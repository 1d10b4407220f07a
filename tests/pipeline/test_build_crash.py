"""A build whose process dies (a task's C extension segfaults, the OOM killer, kill -9) ends the run as
failed with the signal named and frees the run lock; killing `cascade run` kills its build too.

Before the build had a process of its own, Ploomber built each Python task in a forked
`multiprocessing.Pool` worker: a worker that died left the Pool waiting for ever, with the run lock
held (it hung CI for an hour), and a killed run left its worker running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from workbench.pipeline.runner import run_pipeline
from workbench.settings import Settings

TASKS = """
import os, signal, time
from pathlib import Path

def ok(product):
    Path(str(product)).parent.mkdir(parents=True, exist_ok=True)
    Path(str(product)).write_text("ok")

def segfault(product, upstream):
    os.kill(os.getpid(), signal.SIGSEGV)

def sleeper(product):
    Path(str(product)).parent.mkdir(parents=True, exist_ok=True)
    Path(str(product)).with_suffix(".pid").write_text(str(os.getpid()))
    time.sleep(600)
"""

RUN = """
import json, sys
from pathlib import Path
from workbench.pipeline.runner import run_pipeline
result = run_pipeline(Path(sys.argv[1]))
print(json.dumps({"status": result.status, "error": result.error, "tasks": [t.task for t in result.tasks]}))
"""


@pytest.fixture
def crashing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "crashing"
    folder.mkdir()
    module = f"cascade_crash_tasks_{tmp_path.name.replace('-', '_')}"
    (folder / f"{module}.py").write_text(TASKS)
    head = "meta:\n  extract_upstream: false\ntasks:\n"
    ok = f"  - source: {module}.ok\n    name: ok\n    product: out/ok.txt\n"
    (folder / "ok.yaml").write_text(head + ok)
    (folder / "segfault.yaml").write_text(
        head
        + ok
        + f"  - source: {module}.segfault\n    name: segfault\n    product: out/never.txt\n    upstream: [ok]\n"
    )
    (folder / "sleeper.yaml").write_text(
        head + f"  - source: {module}.sleeper\n    name: sleeper\n    product: out/sleep.txt\n"
    )
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.chdir(folder)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), *sys.path]))
    monkeypatch.setenv("PLOOMBER_STATS_ENABLED", "false")
    monkeypatch.setenv("PLOOMBER_VERSION_CHECK_DISABLED", "true")
    return folder


def test_a_task_that_kills_its_process_fails_the_run_and_frees_the_lock(run_home: Settings, crashing: Path) -> None:
    # in a child with a deadline: a hang is a failure here, not a stalled suite
    answer = subprocess.run(
        [sys.executable, "-c", RUN, str(crashing / "segfault.yaml")], capture_output=True, text=True, timeout=300
    )
    assert answer.returncode == 0, answer.stderr[-2000:]
    result = json.loads(answer.stdout.strip().splitlines()[-1])
    assert result["status"] == "failed"
    assert "the build process was killed by SIGSEGV" in result["error"]
    assert (crashing / "out" / "ok.txt").read_text() == "ok"  # what finished before the crash is kept
    again = run_pipeline(crashing / "ok.yaml", settings=run_home)  # the lock is free, the next run works
    assert again.status == "success" and again.note is not None  # ok.txt is up to date: nothing to do


def test_killing_the_run_kills_its_build(run_home: Settings, crashing: Path) -> None:
    run = subprocess.Popen([sys.executable, "-c", RUN, str(crashing / "sleeper.yaml")], stdout=subprocess.DEVNULL)
    pid_file = crashing / "out" / "sleep.pid"
    try:
        deadline = time.monotonic() + 120
        while not pid_file.is_file() or not pid_file.read_text():
            assert run.poll() is None and time.monotonic() < deadline, "the sleeping task never started"
            time.sleep(0.1)
        builder = psutil.Process(int(pid_file.read_text()))
        assert builder.pid != run.pid
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
        gone = time.monotonic() + 30
        while time.monotonic() < gone:
            try:
                if builder.status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.1)
        else:
            builder.kill()
            pytest.fail("the build outlived the killed run")
    finally:
        if run.poll() is None:
            run.kill()
