"""Run infrastructure for the pipeline: run lock, run ids and folders, run history, scheduling."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.pipeline.history import RunSummary, TaskRecord, get_run, list_runs, record_task, track_task
    from workbench.pipeline.lock import LockHolder, RunLock
    from workbench.pipeline.runs import new_run_id, run_dir

__all__ = [
    "LockHolder",
    "RunLock",
    "RunSummary",
    "TaskRecord",
    "get_run",
    "list_runs",
    "new_run_id",
    "record_task",
    "run_dir",
    "track_task",
]
_WHERE = {
    **dict.fromkeys(("RunSummary", "TaskRecord", "get_run", "list_runs", "record_task", "track_task"), "history"),
    **dict.fromkeys(("LockHolder", "RunLock"), "lock"),
    **dict.fromkeys(("new_run_id", "run_dir"), "runs"),
}


def __getattr__(name: str) -> Any:
    """Import lazily: `cascade` loads this package for its commands and must start fast (pyarrow is heavy)."""
    if name in _WHERE:
        return getattr(import_module(f"workbench.pipeline.{_WHERE[name]}"), name)
    raise AttributeError(name)
