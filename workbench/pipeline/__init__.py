"""Run infrastructure for the pipeline: run lock, run ids and folders, run history, scheduling."""

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
