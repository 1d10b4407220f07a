"""`cascade stack import`: an embedded lake's main, dev and tags arrive in the stack with equal rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow


def _counts(lh, tables) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {t: int(lh.sql(f"select count(*) as n from {t}")["n"][0]) for t in tables}


def test_import_copies_main_dev_and_tags(stack_home: Path, stack_env, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from workbench import profiles
    from workbench.errors import StackError
    from workbench.lakehouse import Lakehouse
    from workbench.settings import get_settings, load_settings
    from workbench.stack.transfer import import_lake

    for key, value in stack_env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    profiles.forget_lakes()
    embedded = load_settings(profile="embedded", home=tmp_path / "embedded", warehouse=None, s3_endpoint=None)
    stack = load_settings(profile="stack", home=stack_home)
    profiles.open_lake(stack).wipe()  # type: ignore[attr-defined]

    dev = Lakehouse("dev", settings=embedded)
    ts = pd.date_range("2026-01-01", periods=48, freq="h", tz="UTC")
    dev.write("raw.readings", pd.DataFrame({"ts": ts, "v": range(48)}), partition_by=[("ts", "day")])
    dev.write("marts.daily", pd.DataFrame({"day": ["a", "b"], "n": [1, 2]}))
    dev.merge("dev", into="main")
    dev.tag("v1")
    dev.write("raw.readings", pd.DataFrame({"ts": ts[:5], "v": range(5)}))  # dev moves on
    dev.write("raw.notes", pd.DataFrame({"text": ["x"]}))

    report = import_lake(embedded, stack, say=lambda line: None)
    assert report.tables["main"] == {"marts.daily": 2, "raw.readings": 48}
    for ref in ("main", "dev", "v1"):
        here, there = Lakehouse(ref, settings=embedded), Lakehouse(ref, settings=stack)
        assert here.tables() == there.tables()
        assert _counts(here, here.tables()) == _counts(there, there.tables())
        query = "select day, n from marts.daily order by day"
        assert here.sql(query).to_dict("records") == there.sql(query).to_dict("records")
        there.close()
    assert [f.name for f in Lakehouse("main", settings=stack).table("raw.readings").spec().fields] == ["ts_day"]
    with pytest.raises(StackError, match="already has tables"):
        import_lake(embedded, stack, say=lambda line: None)
    get_settings.cache_clear()
    profiles.forget_lakes()
