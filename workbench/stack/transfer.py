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
    occupied = [k for k in ("main", "dev") if target.state(k)]
    if occupied:
        raise StackError(
            f"the stack lake already has tables on {', '.join(occupied)}; import only into an empty stack "
            "(`cascade stack down`, remove CASCADE_HOME/stack, `cascade stack up`)"
        )
    report = ImportReport()
    main_state = source.state("main")
    report.tables["main"] = {k: _copy(source, "main", k, target, "main") for k in main_state}
    say(f"main: {len(main_state)} table(s) copied")
    target.reset("dev", "main")
    dev_state = source.state("dev")
    report.tables["dev"] = {}
    for key, location in dev_state.items():
        if main_state.get(key) != location:
            report.tables["dev"][key] = _copy(source, "dev", key, target, "dev")
    for key in set(main_state) - set(dev_state):
        target.drop_table("dev", key, message=f"import: {key} is not on the embedded dev")
    say(f"dev: {len(report.tables['dev'])} table(s) differ from main and were copied")
    for ref in source.refs():
        if ref.kind != "tag":
            continue
        scratch = f"import-tag-{ref.name}".replace("/", "-")
        target.create_branch(scratch, "main")
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
