"""Crash safety and concurrency: a merge killed at its commit point, concurrent writers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from workbench.lakehouse import Lakehouse

TABLES = ("raw.a", "silver.b", "marts.c")

MERGE_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from workbench.lake import ledger
    from workbench.lakehouse import Lakehouse

    if sys.argv[1] == "kill":
        # SIGKILL inside the SQLite transaction, after every pointer was rewritten, before COMMIT.
        ledger.before_commit_hook = lambda what: os.kill(os.getpid(), signal.SIGKILL)
    Lakehouse("dev").merge("dev", into="main")
    print("merged")
    """
)


def _state(home: Path) -> dict[str, int]:
    main = Lakehouse("main")
    return {t: int(main.sql(f"select count(*) as n from {t}")["n"][0]) for t in main.tables()}


def _setup_three_tables(lh: Lakehouse) -> None:
    for i, table in enumerate(TABLES):
        lh.write(table, pd.DataFrame({"id": range(10 + i)}))
    lh.merge("dev", into="main")
    for table in TABLES:
        lh.write(table, pd.DataFrame({"id": range(100, 105)}))


def _run(script: str, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CASCADE_HOME": str(home)}
    return subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=120)


def test_merge_killed_at_commit_point_leaves_main_wholly_old(lh: Lakehouse, cascade_home: Path) -> None:
    _setup_three_tables(lh)
    old = _state(cascade_home)
    assert old == {"marts.c": 12, "raw.a": 10, "silver.b": 11}
    proc = _run(MERGE_SCRIPT, "kill", home=cascade_home)
    assert proc.returncode == -9, proc.stderr
    assert "merged" not in proc.stdout
    fresh = Lakehouse("main")
    assert _state(cascade_home) == old
    assert fresh.log(limit=1)[0].operation == "merge"  # the first merge, not a partial second one
    assert len([c for c in fresh.log() if c.operation == "merge"]) == 1

    proc = _run(MERGE_SCRIPT, "ok", home=cascade_home)
    assert proc.returncode == 0, proc.stderr
    assert _state(cascade_home) == {t: n + 5 for t, n in old.items()}


def test_merge_killed_at_random_points_is_all_or_nothing(lh: Lakehouse, cascade_home: Path) -> None:
    _setup_three_tables(lh)
    old = _state(cascade_home)
    new = {t: n + 5 for t, n in old.items()}
    script = MERGE_SCRIPT.replace('if sys.argv[1] == "kill":', "if False:")
    env = {**os.environ, "CASCADE_HOME": str(cascade_home)}
    for delay in (0.3, 0.6, 0.9):
        proc = subprocess.Popen([sys.executable, "-c", script, "x"], env=env)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        state = _state(cascade_home)
        assert state in (old, new)  # never a mix of merged and unmerged tables
        if state == new:
            break


WRITER_SCRIPT = textwrap.dedent(
    """
    import sys
    import pandas as pd
    from workbench.lakehouse import Lakehouse

    writer, batches = int(sys.argv[1]), int(sys.argv[2])
    lh = Lakehouse("dev")
    for b in range(batches):
        lh.write("raw.shared", pd.DataFrame({"writer": [writer] * 7, "batch": [b] * 7, "i": range(7)}))
    """
)


def test_concurrent_writers_lose_no_rows(lh: Lakehouse, cascade_home: Path) -> None:
    lh.write("raw.shared", pd.DataFrame({"writer": [0], "batch": [0], "i": [0]}))
    env = {**os.environ, "CASCADE_HOME": str(cascade_home)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(w), "8"], env=env, stderr=subprocess.PIPE, text=True)
        for w in (1, 2, 3)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    counts = lh.sql("select writer, count(*) as n from raw.shared group by writer order by writer")
    assert counts["n"].tolist() == [1, 56, 56, 56]
    commits = [c for c in lh.log(limit=None) if c.tables == ("raw.shared",)]
    assert len(commits) == 1 + 3 * 8  # one commit per write, none lost


@pytest.mark.parametrize("op", ["reset"])
def test_reset_killed_before_commit_changes_nothing(lh: Lakehouse, cascade_home: Path, op: str) -> None:
    lh.write("raw.a", pd.DataFrame({"id": [1]}))
    first = lh.log(limit=1)[0].id
    lh.write("raw.a", pd.DataFrame({"id": [2]}))
    lh.write("raw.b", pd.DataFrame({"id": [3]}))
    script = textwrap.dedent(
        f"""
        import os, signal
        from workbench.lake import ledger
        from workbench.lakehouse import Lakehouse
        ledger.before_commit_hook = lambda what: os.kill(os.getpid(), signal.SIGKILL)
        Lakehouse("dev").reset("dev", "{first}")
        """
    )
    proc = _run(script, home=cascade_home)
    assert proc.returncode == -9
    fresh = Lakehouse("dev")
    assert fresh.tables() == ["raw.a", "raw.b"]
    assert int(fresh.sql("select count(*) as n from raw.a")["n"][0]) == 2
