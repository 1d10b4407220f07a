"""Maintenance that respects every ref: snapshot expiry per branch, then orphan-file removal.

Branches share data files (a branch is a copy of pointers), so a file is only removed when no branch
head and no tag reaches it through any table's metadata: its metadata file, a retained snapshot's
manifest list, a manifest, a data or delete file, or a statistics file. Files younger than a grace
period are kept too, so writes in flight are never touched. Commits that are no longer reachable
through a ref (e.g. after `reset`) may lose their files and then cannot be read any more.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pyarrow import fs as pafs
from pyiceberg.io import load_file_io
from pyiceberg.serializers import FromInputFile

from workbench.lake.api import VersionedLake
from workbench.lake.catalog import commit_message
from workbench.settings import Settings


@dataclass
class MaintenanceReport:
    """What `maintain` did (or would do, with dry_run)."""

    snapshots_expired: dict[str, int] = field(default_factory=dict)
    files_scanned: int = 0
    files_reachable: int = 0
    files_deleted: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    dry_run: bool = False
    note: str = ""  # what this profile's maintenance does not do

    def summary(self) -> str:
        if self.note:
            return self.note
        verb = "would delete" if self.dry_run else "deleted"
        expired = sum(self.snapshots_expired.values())
        return (
            f"expired {expired} snapshot(s) on {len(self.snapshots_expired)} table/branch pair(s); "
            f"scanned {self.files_scanned} files, {self.files_reachable} reachable from a ref; "
            f"{verb} {len(self.files_deleted)} orphan file(s), {self.bytes_freed / 1e6:.1f} MB"
        )


def _strip(path: str) -> str:
    """A path without its scheme, as the filesystem listing reports it."""
    return path.split("://", 1)[1] if "://" in path else path


def expire_snapshots(
    lake: VersionedLake, branches: Iterable[str], older_than: datetime, retain_last: int
) -> dict[str, int]:
    """Expire snapshots older than `older_than` on each branch's tables, keeping the newest `retain_last`."""
    expired: dict[str, int] = {}
    cutoff_ms = int(older_than.timestamp() * 1000)
    for branch in branches:
        catalog = lake.catalog(branch)
        for key in lake.state(branch):
            table = catalog.load_table(key)
            protected = {ref.snapshot_id for ref in table.metadata.refs.values()}
            newest_first = sorted(table.metadata.snapshots, key=lambda s: s.timestamp_ms, reverse=True)
            protected |= {s.snapshot_id for s in newest_first[: max(retain_last, 1)]}
            ids = [s.snapshot_id for s in newest_first if s.timestamp_ms < cutoff_ms and s.snapshot_id not in protected]
            if not ids:
                continue
            with commit_message(f"maintain: expire {len(ids)} snapshot(s) of {key}"):
                table.maintenance.expire_snapshots().by_ids(ids).commit()
            expired[f"{branch}:{key}"] = len(ids)
    return expired


def reachable_files(lake: VersionedLake, settings: Settings) -> set[str]:
    """Every file any branch head or tag can still read."""
    props = lake.io_properties()
    seen_metadata: set[str] = set()
    files: set[str] = set()
    for ref in lake.refs():
        state = lake.state(ref.name)
        for location in state.values():
            if location in seen_metadata:
                continue
            seen_metadata.add(location)
            files.add(_strip(location))
            io = load_file_io(properties=props, location=location)
            metadata = FromInputFile.table_metadata(io.new_input(location))
            for stats in list(metadata.statistics) + list(metadata.partition_statistics):
                files.add(_strip(stats.statistics_path))
            for snapshot in metadata.snapshots:
                files.add(_strip(snapshot.manifest_list))
                for manifest in snapshot.manifests(io):
                    files.add(_strip(manifest.manifest_path))
                    for entry in manifest.fetch_manifest_entry(io, discard_deleted=False):
                        files.add(_strip(entry.data_file.file_path))
    return files


def remove_orphan_files(
    lake: VersionedLake, settings: Settings, grace: timedelta, dry_run: bool = False, report: Any = None
) -> MaintenanceReport:
    """Delete warehouse files no ref reaches and older than `grace`."""
    report = report or MaintenanceReport(dry_run=dry_run)
    keep = reachable_files(lake, settings)
    report.files_reachable = len(keep)
    filesystem, root = pafs.FileSystem.from_uri(settings.warehouse_uri)
    cutoff = datetime.now(UTC) - grace
    try:
        infos = filesystem.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    except FileNotFoundError:
        infos = []
    for info in infos:
        if info.type != pafs.FileType.File:
            continue
        report.files_scanned += 1
        path = _strip(info.path) if "://" in info.path else info.path
        if path in keep or (info.mtime is not None and info.mtime.replace(tzinfo=UTC) > cutoff):
            continue
        report.files_deleted.append(info.path)
        report.bytes_freed += info.size or 0
        if not dry_run:
            filesystem.delete_file(info.path)
    return report


def maintain(
    lake: VersionedLake,
    settings: Settings,
    *,
    older_than: timedelta = timedelta(days=7),
    retain_last: int = 5,
    grace: timedelta = timedelta(hours=24),
    dry_run: bool = False,
    branches: Iterable[str] | None = None,
) -> MaintenanceReport:
    """Expire old snapshots on every branch (or the given ones), then remove orphan files."""
    report = MaintenanceReport(dry_run=dry_run)
    if not dry_run:
        names = list(branches) if branches is not None else [r.name for r in lake.refs() if r.kind == "branch"]
        report.snapshots_expired = expire_snapshots(lake, names, datetime.now(UTC) - older_than, retain_last)
    return remove_orphan_files(lake, settings, grace, dry_run, report)
