"""The stage area: dlt pipelines writing Parquet load packages under `CASCADE_HOME/stage`.

One dlt pipeline per (site, branch): its working dir (state, pending packages) is under
`CASCADE_HOME/ingest/dlt`, its destination is the `filesystem` destination with Parquet files in
`CASCADE_HOME/stage/<dataset>/<table>/<load_id>.<file_id>.parquet`.

Exactly once, end to end: dlt completes a load package in the stage (a `_dlt_loads` record) only
after all its files are written, and our ledger (`stage/_cascade/<dataset>.landed.jsonl`) records
a package only after its rows were committed to Iceberg. A package that is complete in the stage
but not in the ledger is *pending* and is landed at the start of the next run, before anything new
is fetched. Landing uses insert-new on the key, so landing a package twice (a crash between the
Iceberg commit and the ledger write) adds nothing. dlt's cursor therefore advances only together
with durable staged data whose landing is guaranteed by the ledger; the tables themselves change
only by atomic Iceberg commits.
"""

from __future__ import annotations

import fcntl
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt
from dlt.destinations import filesystem
from dlt.pipeline.exceptions import PipelineStepFailed

from workbench.errors import CascadeError, LockedError
from workbench.ingest.errors import LoadError
from workbench.settings import Settings

dlt.config["runtime.dlthub_telemetry"] = False
dlt.config["runtime.log_level"] = "WARNING"
dlt.config["normalize.parquet_normalizer.add_dlt_load_id"] = True  # lineage: the package a row came from
# pages of one resource may type an extra field differently (a float on one page, text on the next):
# written to separate files instead of failing the package (lossless; `loader.unify` reconciles them)
dlt.config["data_writer.arrow_concat_promote_options"] = "default"


class _QuietHintMerge(logging.Filter):
    """dlt warns on every run that the incremental cursor's hints (non-nullable `date`) differ from
    the Arrow schema (nullable); that is expected here, and the data is unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "several column hints were different" not in record.getMessage()


logging.getLogger("dlt").addFilter(_QuietHintMerge())


def _slug(value: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", value.lower()).strip("_") or "x"


@dataclass(frozen=True)
class StageArea:
    """The staged load packages of one site for one target branch."""

    settings: Settings
    site_id: str
    branch: str

    @property
    def dataset(self) -> str:
        return f"nightscout__{_slug(self.site_id)}__{_slug(self.branch)}"

    @property
    def root(self) -> Path:
        return self.settings.stage_dir / self.dataset

    @property
    def pipelines_dir(self) -> Path:
        return self.settings.home / "ingest" / "dlt"

    @property
    def ledger(self) -> Path:
        """Our record of landed packages (beside, not inside, dlt's dataset folder)."""
        return self.settings.stage_dir / "_cascade" / f"{self.dataset}.landed.jsonl"

    def pipeline(self) -> dlt.Pipeline:
        """The dlt pipeline (state and pending packages under CASCADE_HOME)."""
        self.settings.stage_dir.mkdir(parents=True, exist_ok=True)
        return dlt.pipeline(
            pipeline_name=self.dataset,
            pipelines_dir=str(self.pipelines_dir),
            destination=filesystem(
                bucket_url=str(self.settings.stage_dir.resolve()), enable_dataset_name_normalization=False
            ),
            dataset_name=self.dataset,
        )

    def completed_loads(self) -> list[str]:
        """Load ids dlt finished writing into the stage, oldest first."""
        folder = self.root / "_dlt_loads"
        if not folder.is_dir():
            return []
        ids = []
        for path in folder.glob("*.jsonl"):
            name = path.name[: -len(".jsonl")]
            ids.append(name.rsplit("__", 1)[-1])
        return sorted(set(ids), key=float)

    def landed(self) -> set[str]:
        path = self.ledger
        if not path.is_file():
            return set()
        out = set()
        for line in path.read_text().splitlines():
            line = line.strip()
            if line:
                try:
                    out.add(json.loads(line)["load_id"])
                except (ValueError, KeyError):
                    continue  # a torn last line from a crash: that package is landed again (no-op)
        return out

    def pending(self) -> list[str]:
        """Completed load packages whose rows are not known to be in Iceberg yet."""
        done = self.landed()
        return [load_id for load_id in self.completed_loads() if load_id not in done]

    def files(self, table: str, load_ids: list[str]) -> list[Path]:
        folder = self.root / table
        if not folder.is_dir():
            return []
        wanted = set(load_ids)
        return sorted(p for p in folder.glob("*.parquet") if p.name.rsplit(".", 2)[0] in wanted)

    @property
    def quarantine_dir(self) -> Path:
        """Where packages that cannot be landed are kept for inspection (never landed again)."""
        return self.settings.stage_dir / "_quarantine" / self.dataset

    def quarantine(self, load_id: str, reason: str) -> Path:
        """Move a staged package that cannot be landed aside and record it, so it never blocks a
        later run (also after a full resync); returns its folder."""
        target = self.quarantine_dir / load_id
        target.mkdir(parents=True, exist_ok=True)
        if self.root.is_dir():
            for folder in self.root.iterdir():
                if not folder.is_dir() or folder.name.startswith("_dlt"):
                    continue
                for path in folder.glob(f"{load_id}.*"):
                    (target / folder.name).mkdir(exist_ok=True)
                    path.replace(target / folder.name / path.name)
        (target / "reason.txt").write_text(reason + "\n")
        self.mark_landed([load_id], {"branch": self.branch, "quarantined": reason})
        return target

    def quarantined(self) -> dict[str, str]:
        """Load id -> reason of every quarantined package."""
        out: dict[str, str] = {}
        if self.ledger.is_file():
            for line in self.ledger.read_text().splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and record.get("quarantined"):
                    out[str(record.get("load_id"))] = str(record["quarantined"])
        return out

    def mark_landed(self, load_ids: list[str], detail: dict[str, Any]) -> None:
        """Record packages as landed (after the Iceberg commits succeeded)."""
        self.ledger.parent.mkdir(parents=True, exist_ok=True)
        at = datetime.now(UTC).isoformat()
        with self.ledger.open("a") as fh:
            for load_id in load_ids:
                fh.write(json.dumps({"load_id": load_id, "landed_at": at, **detail}) + "\n")
            fh.flush()

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One run per site and branch at a time."""
        self.ledger.parent.mkdir(parents=True, exist_ok=True)
        with self.ledger.with_suffix(".lock").open("w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LockedError(
                    f"another ingest of site {self.site_id} into branch {self.branch} is running"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _cascade_cause(exc: BaseException) -> CascadeError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, CascadeError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


@contextmanager
def _dlt_errors(area: StageArea) -> Iterator[None]:
    """dlt step failures as one-line Cascade errors (our own errors, e.g. auth, pass through)."""
    try:
        yield
    except PipelineStepFailed as exc:
        cause = _cascade_cause(exc)
        if cause is not None:
            raise cause from None
        root = exc.__cause__ or exc
        raise LoadError(
            f"staging site {area.site_id} failed in dlt step '{exc.step}': {type(root).__name__}: "
            f"{str(root).splitlines()[0] if str(root) else ''}"
        ) from exc


def finish_pending(area: StageArea) -> list[str]:
    """Finish packages an interrupted earlier run left in dlt's working dir (extracted or normalized,
    not yet written to the stage); return their load ids. Their data is never lost or skipped; a
    package dlt cannot finish is quarantined (`quarantine_pending`) instead of blocking every run."""
    pipeline = area.pipeline()
    if not pipeline.has_pending_data:
        return []
    try:
        with _dlt_errors(area):
            pipeline.normalize()
            return list(pipeline.load().loads_ids)
    except LoadError as exc:
        quarantine_pending(area, str(exc))
        raise


def quarantine_pending(area: StageArea, reason: str) -> Path | None:
    """Copy dlt's unfinished packages of this site to the quarantine folder and drop them from its
    working dir, so the next run starts clean; returns the folder (None when nothing was pending)."""
    import shutil

    pipeline = area.pipeline()
    if not pipeline.has_pending_data:
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    target = area.quarantine_dir / f"unfinished-{stamp}"
    working = Path(pipeline.working_dir)
    for name in ("normalize", "load"):
        if (working / name).is_dir():
            shutil.copytree(working / name, target / name, dirs_exist_ok=True)
    target.mkdir(parents=True, exist_ok=True)
    (target / "reason.txt").write_text(reason + "\n")
    pipeline.drop_pending_packages(with_partial_loads=True)
    return target


def stage(area: StageArea, source: Any, *, full_resync: bool = False) -> list[str]:
    """Run the dlt source into the stage; return the load ids it completed.

    Call `finish_pending` and land its packages first: a full resync drops the staged tables and
    the cursor (dlt `refresh="drop_sources"`). When dlt fails after extracting (normalize or load),
    the unfinished package is quarantined (`quarantine_pending`) and the error raised: the cursor
    did not move, so the documents are fetched again by the next run.
    """
    pipeline = area.pipeline()
    try:
        with _dlt_errors(area):
            if full_resync:
                info = pipeline.run(source, loader_file_format="parquet", refresh="drop_sources")
            else:
                info = pipeline.run(source, loader_file_format="parquet")
            return list(info.loads_ids)
    except LoadError as exc:
        where = quarantine_pending(area, str(exc))
        if where is not None:
            raise LoadError(f"{exc}; the unfinished package was quarantined in {where}") from None
        raise
