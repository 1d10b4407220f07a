"""`cascade stack import`: move the embedded lake up to the stack.

The heads of `main` and `dev` and every tag of the embedded lake are copied into the stack's Nessie
lake: `main`'s tables are written to the stack's `main` (data files to S3, tables registered in Nessie,
one commit per table), `dev` gets the tables where it differs from `main`, and each tag is recreated on
a commit holding exactly its tables. Partition specs and row order are kept; the history before
those heads is not copied (commit ids differ between the two lakes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import StackError
from workbench.lake.api import DEV_BRANCH, MAIN_BRANCH
from workbench.settings import Settings

_TRANSFORMS = {"day": "day", "month": "month", "year": "year", "hour": "hour", "identity": "identity"}


@dataclass
class ImportReport:
    tables: dict[str, dict[str, int]] = field(default_factory=dict)  # ref -> table -> rows

    def lines(self) -> list[str]:
        out = []
        for ref, tables in self.tables.items():
            total = sum(tables.values())
            out.append(f"{ref}: {len(tables)} table(s), {total} row(s)")
        return out


def _partition_by(table: Any) -> list[tuple[str, str]]:
    spec, schema = table.spec(), table.schema()
    out = []
    for f in spec.fields:
        name = str(f.transform).split("[")[0].lower()
        if name not in _TRANSFORMS:
            raise StackError(f"cannot import {table.name()}: partition transform {f.transform} is not supported")
        out.append((schema.find_field(f.source_id).name, _TRANSFORMS[name]))
    return out


def _copy(source: Any, source_ref: str, key: str, target: Any, target_ref: str) -> int:
    table = source.catalog(source_ref).load_table(key)
    data = table.scan().to_arrow()
    target.write(
        target_ref,
        key,
        data,
        mode="overwrite",
        partition_by=_partition_by(table) or None,
        message=f"import {key} from the embedded lake ({source_ref})",
    )
    return int(data.num_rows)


def import_lake(embedded: Settings, stack: Settings, say: Callable[[str], None] = print) -> ImportReport:
    """Copy main, dev and the tags of the embedded lake at `embedded.home` into the stack lake."""
    from workbench import profiles

    source = profiles.open_lake(embedded)
    target = profiles.open_lake(stack)
    if source.profile != "embedded" or target.profile != "stack":
        raise StackError("import copies an embedded lake into the stack: check CASCADE_HOME and the stack settings")
    occupied = [k for k in (MAIN_BRANCH, DEV_BRANCH) if target.state(k)]
    if occupied:
        raise StackError(
            f"the stack lake already has tables on {', '.join(occupied)}; import only into an empty stack "
            "(`cascade stack down`, remove CASCADE_HOME/stack, `cascade stack up`)"
        )
    report = ImportReport()
    main_state = source.state(MAIN_BRANCH)
    report.tables[MAIN_BRANCH] = {k: _copy(source, MAIN_BRANCH, k, target, MAIN_BRANCH) for k in main_state}
    say(f"{MAIN_BRANCH}: {len(main_state)} table(s) copied")
    target.reset(DEV_BRANCH, MAIN_BRANCH)
    dev_state = source.state(DEV_BRANCH)
    report.tables[DEV_BRANCH] = {}
    for key, location in dev_state.items():
        if main_state.get(key) != location:
            report.tables[DEV_BRANCH][key] = _copy(source, DEV_BRANCH, key, target, DEV_BRANCH)
    for key in set(main_state) - set(dev_state):
        target.drop_table(DEV_BRANCH, key, message=f"import: {key} is not on the embedded {DEV_BRANCH}")
    say(f"{DEV_BRANCH}: {len(report.tables[DEV_BRANCH])} table(s) differ from {MAIN_BRANCH} and were copied")
    for ref in source.refs():
        if ref.kind != "tag":
            continue
        scratch = f"import-tag-{ref.name}".replace("/", "-")
        target.create_branch(scratch, MAIN_BRANCH)
        tag_state = source.state(ref.name)
        report.tables[ref.name] = {}
        for key, location in tag_state.items():
            if main_state.get(key) != location:
                report.tables[ref.name][key] = _copy(source, ref.name, key, target, scratch)
        for key in set(main_state) - set(tag_state):
            target.drop_table(scratch, key)
        target.create_tag(ref.name, scratch)
        target.delete_branch(scratch)
        say(f"tag {ref.name}: recreated")
    return report
