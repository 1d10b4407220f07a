"""The `cascade` CLI, run as users run it (the console script in a subprocess)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli


def test_lake_workflow_through_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "home"
    csv = tmp_path / "notes.csv"
    csv.write_text("_id,sgv,note\na,100,x\nb,200,y\n")
    out = run_cli("load", "raw.notes", str(csv), "--branch", "dev", home=home, check=True).stdout
    assert "2 row(s) written" in out
    assert run_cli("tables", "--ref", "main", home=home, check=True).stdout.strip() == ""
    assert run_cli("tables", "--ref", "dev", home=home, check=True).stdout.split() == ["raw.notes"]

    upd = tmp_path / "upd.json"
    upd.write_text(json.dumps([{"_id": "b", "sgv": 250, "note": "z"}, {"_id": "c", "sgv": 90, "note": "w"}]))
    out = run_cli("load", "raw.notes", str(upd), "--mode", "upsert", "--key", "_id", home=home, check=True).stdout
    assert "1 replaced" in out

    rows = run_cli(
        "sql",
        "select _id, sgv from raw.notes order by _id",
        "--ref",
        "dev",
        "--format",
        "csv",
        home=home,
        check=True,
    )
    assert rows.stdout.splitlines() == ["_id,sgv", "a,100", "b,250", "c,90"]

    assert "merged dev into main" in run_cli("merge", "dev", "--into", "main", home=home, check=True).stdout
    js = run_cli(
        "sql",
        "select count(*) as n from raw.notes",
        "--ref",
        "main",
        "--format",
        "json",
        home=home,
        check=True,
    )
    assert json.loads(js.stdout) == [{"n": 3}]  # one JSON array

    log = json.loads(run_cli("log", "main", "--format", "json", home=home, check=True).stdout)
    assert log[0]["operation"] == "merge"
    first_load = json.loads(run_cli("log", "dev", "--format", "json", home=home).stdout)[-2]

    run_cli("branch", "create", "exp", "--from", first_load["id"], home=home, check=True)
    assert "exp" in run_cli("branch", "list", home=home, check=True).stdout
    exp_rows = run_cli("sql", "select count(*) as n from raw.notes", "--ref", "exp", "--format", "csv", home=home)
    assert exp_rows.stdout.splitlines() == ["n", "2"]
    run_cli("tag", "create", "v1", "--from", "main", home=home, check=True)
    assert run_cli("tag", "list", home=home, check=True).stdout.startswith("v1\t")
    assert "reset dev" in run_cli("reset", "dev", "--to", first_load["id"], home=home, check=True).stdout
    hist = run_cli("history", "raw.notes", "--ref", "main", "--format", "csv", home=home, check=True)
    assert len(hist.stdout.splitlines()) == 4  # header + append, then the upsert's delete + append
    assert "deleted branch exp" in run_cli("branch", "delete", "exp", home=home, check=True).stdout
    assert "orphan" in run_cli("maintain", "--dry-run", home=home, check=True).stdout


def test_user_errors_are_one_line_and_nonzero(tmp_path: Path) -> None:
    home = tmp_path / "home"
    bad_csv = tmp_path / "bad.txt"
    bad_csv.write_text("x")
    cases = [
        (("sql", "select * from raw.nope", "--ref", "dev"), "does not exist"),
        (("sql", "selec 1"), "syntax"),
        (("tables", "--ref", "nope"), "unknown ref 'nope'"),
        (("merge", "nope", "--into", "main"), "unknown ref"),
        (("load", "raw.x", str(tmp_path / "missing.csv")), "file not found"),
        (("load", "raw.x", str(bad_csv)), "unsupported file type"),
        (("branch", "delete", "main"), "main branch cannot be deleted"),
        (("history", "raw.nope"), "does not exist on 'main'"),
        (("reset", "dev", "--to", "deadbeef00"), "unknown ref"),
    ]
    for args, expected in cases:
        proc = run_cli(*args, home=home)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0].lower() if expected.islower() else expected in lines[0], (
            args,
            proc.stderr,
        )


def test_merge_conflict_through_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "home"
    csv = tmp_path / "a.csv"
    csv.write_text("id\n1\n")
    run_cli("load", "raw.a", str(csv), home=home, check=True)
    run_cli("merge", "dev", "--into", "main", home=home, check=True)
    run_cli("load", "raw.a", str(csv), "--branch", "main", home=home, check=True)
    run_cli("load", "raw.a", str(csv), "--branch", "dev", home=home, check=True)
    proc = run_cli("merge", "dev", "--into", "main", home=home)
    assert proc.returncode == 1
    assert "merge conflict" in proc.stderr and "raw.a" in proc.stderr


def test_a_failed_run_exits_nonzero(tmp_path: Path) -> None:
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text("tasks:\n  - source: missing_notebook.py\n    product: out.ipynb\n")
    proc = run_cli("run", "--pipeline", str(pipeline), home=tmp_path / "home")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert ": failed" in proc.stdout
