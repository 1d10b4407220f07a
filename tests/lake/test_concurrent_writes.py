"""insert_new and upsert stay correct with several processes writing one table at once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from workbench.lakehouse import Lakehouse

KEYS = 2000
WRITERS = 4

_WRITER = textwrap.dedent(
    """
    import sys, time
    import pyarrow as pa
    from workbench.lakehouse import Lakehouse
    mode, writer, keys, start_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    data = pa.table({"id": list(range(keys)), "v": [float(writer)] * keys, "writer": [writer] * keys})
    lh = Lakehouse("dev")
    while time.time() < start_at:  # all writers start together
        time.sleep(0.005)
    result = lh.write("raw.race", data, mode=mode, key=["id"], message=f"writer {writer}")
    print(result.rows_written)
    """
)


def _race(home: Path, mode: str, writers: int = WRITERS) -> list[subprocess.CompletedProcess[str]]:
    import time

    env = {**os.environ, "CASCADE_HOME": str(home), "CASCADE_PROFILE": "embedded"}
    start_at = time.time() + 3.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, mode, str(w), str(KEYS), str(start_at)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(writers)
    ]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def _seeded_race(home: Path, lh: Lakehouse, mode: str) -> list[subprocess.CompletedProcess[str]]:
    """Race the writers on a table that already exists (so each takes the insert/overwrite path);
    every writer must succeed without a traceback."""
    import pyarrow as pa

    lh.write("raw.race", pa.table({"id": [-1], "v": [0.0], "writer": [-1]}), mode="append")
    results = _race(home, mode)
    assert all(r.returncode == 0 for r in results), [r.stderr[-2000:] for r in results]
    assert all("Traceback" not in r.stderr for r in results)
    return results


@pytest.mark.slow
def test_concurrent_insert_new_lands_each_key_once(cascade_home: Path, lh: Lakehouse) -> None:
    results = _seeded_race(cascade_home, lh, "insert_new")
    written = sum(int(r.stdout.strip()) for r in results)
    assert written == KEYS  # the winners wrote every key once; the others skipped them
    fresh = Lakehouse("dev")
    counts = fresh.sql("select count(*) as n, count(distinct id) as d from raw.race")
    assert counts["n"].iloc[0] == KEYS + 1 and counts["d"].iloc[0] == KEYS + 1


@pytest.mark.slow
def test_concurrent_upserts_leave_one_row_per_key(cascade_home: Path, lh: Lakehouse) -> None:
    _seeded_race(cascade_home, lh, "upsert")
    fresh = Lakehouse("dev")
    counts = fresh.sql(
        "select count(*) as n, count(distinct id) as d, count(distinct writer) as w from raw.race where id >= 0"
    )
    assert counts["n"].iloc[0] == KEYS and counts["d"].iloc[0] == KEYS
    assert counts["w"].iloc[0] == 1  # the last upsert wins for every key (each wrote all keys in one commit)
