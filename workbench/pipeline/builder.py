"""The pipeline build in a child process of its own: `build_in_child()` (the parent's side) and
`python -m workbench.pipeline.builder` (the child's).

The parent sends the build's arguments and its import path on stdin (pickled), the child builds the
DAG with `runner.build_in_this_process` and writes the outcomes to a result file in the run folder.
The child dies with its parent (`PR_SET_PDEATHSIG`), so stopping `cascade run` stops the build too.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.pipeline.errors import PipelineError

if TYPE_CHECKING:
    from workbench.pipeline.runner import TaskOutcome

RESULT_FILE = ".build-result.pickle"


def build_in_child(
    pipeline: Path, folder: Path, force: bool, env: dict[str, Any] | None
) -> tuple[list[TaskOutcome], str | None]:
    """Run the build in `python -m workbench.pipeline.builder` and wait for it."""
    result = folder / RESULT_FILE
    result.unlink(missing_ok=True)
    request = pickle.dumps((pipeline, folder, force, env, list(sys.path), os.getpid()))
    child = subprocess.Popen([sys.executable, "-m", "workbench.pipeline.builder"], stdin=subprocess.PIPE)
    try:
        child.communicate(request)
    finally:
        if child.poll() is None:  # interrupted (Ctrl-C): stop the build with us
            child.terminate()
            child.wait()
    if not result.is_file():
        return [], (
            f"the build process {_death(child.returncode)} before it finished; tasks that finished are kept "
            f"and the next run carries on (output in {folder})"
        )
    kind, value = pickle.loads(result.read_bytes())
    result.unlink()
    if kind == "pipeline-error":
        raise PipelineError(value)
    if kind == "crash":
        (folder / "error.txt").write_text(value)
        return [], f"the build failed unexpectedly (traceback in {folder / 'error.txt'})"
    outcomes, error = value
    return list(outcomes), error


def _death(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _die_with_parent(parent: int) -> None:
    """Linux: ask for SIGKILL when the parent goes, however it goes."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # it went before the request took effect
        os._exit(1)


def main() -> None:
    pipeline, folder, force, env, path, parent = pickle.loads(sys.stdin.buffer.read())
    _die_with_parent(parent)
    sys.path[:] = path  # the parent's import path: a project's task modules
    from workbench.pipeline.runner import build_in_this_process

    try:
        value: Any = ("done", build_in_this_process(pipeline, folder, force, env))
    except PipelineError as exc:
        value = ("pipeline-error", str(exc))
    except Exception:
        value = ("crash", traceback.format_exc())
    target = Path(folder) / RESULT_FILE
    partial = target.with_suffix(".partial")
    partial.write_bytes(pickle.dumps(value))
    partial.replace(target)  # whole or absent: a parent never reads half a result


if __name__ == "__main__":
    main()
