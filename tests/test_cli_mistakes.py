"""Every kind of CLI mistake gets one line on stderr and the right exit code (2 = usage, 1 = user
error), never a traceback; plus the conveniences that go with it (--version, JSON arrays, refs with
ancestry, diff/show, SQL writes as commits). Runs the real `cascade` console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli

CASCADE = Path(sys.executable).with_name("cascade")


def _one_line_error(proc: subprocess.CompletedProcess[str], code: int, expected: str, args: object) -> None:
    assert proc.returncode == code, (args, proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout, (args, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, (args, proc.stderr)
    assert lines[0].startswith("error: ") and expected.lower() in lines[0].lower(), (args, lines[0])


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small lake: raw.notes loaded on dev (2 commits), merged into main, tag v1."""
    base = tmp_path_factory.mktemp("mistakes")
    home = base / "home"
    csv = base / "notes.csv"
    csv.write_text("_id,sgv\na,100\nb,200\n")
    run_cli("init", home=home, check=True)
    run_cli("load", "raw.notes", str(csv), "--branch", "dev", home=home, check=True)
    run_cli("sql", "insert into raw.notes values ('c', 300)", "--ref", "dev", home=home, check=True)
    run_cli("merge", "dev", "--into", "main", home=home, check=True)
    run_cli("tag", "create", "v1", "--from", "main", home=home, check=True)
    return home


USAGE_MISTAKES = [
    (("tabels",), "No such command 'tabels'"),
    (("tables", "--reff", "main"), "No such option: --reff"),
    (("history",), "Missing argument"),
    (("log", "-n", "abc"), "Invalid value for '--limit'"),
    (("log", "-n", "0"), "Invalid value for '--limit'"),
    (("load", "raw.x", "f.csv", "--mode", "replace"), "Invalid value for '--mode'"),
    (("branch", "create"), "Missing argument"),
    (("diff", "main"), "Missing argument"),
    (("sql",), "Missing argument"),
    (("sql", "select 1", "extra"), "unexpected extra argument"),
    (("transform", "bild"), "No such command 'bild'"),
]


@pytest.mark.parametrize(("args", "expected"), USAGE_MISTAKES, ids=[" ".join(a) for a, _ in USAGE_MISTAKES])
def test_usage_mistakes_are_one_line_and_exit_2(lake: Path, args: tuple[str, ...], expected: str) -> None:
    _one_line_error(run_cli(*args, home=lake), 2, expected, args)


def _commands_with_format() -> list[list[str]]:
    import typer

    from workbench.cli import app

    found: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, [*path, name])
        if any("--format" in getattr(p, "opts", []) for p in getattr(command, "params", [])):
            found.append(path)

    walk(typer.main.get_command(app), [])
    return found


def test_format_is_validated_on_every_command_that_has_it(lake: Path) -> None:
    commands = _commands_with_format()
    assert {("sql",), ("log",), ("history",), ("diff",), ("show",)} <= {tuple(c) for c in commands}
    for path in commands:
        proc = run_cli(*path, "--format", "xml", home=lake)
        # the bad choice is reported before any missing argument (both are usage errors)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (path, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, (path, proc.stderr)


def test_bare_cascade_prints_help_and_exits_2(lake: Path) -> None:
    proc = run_cli(home=lake)
    assert proc.returncode == 2 and "Usage: cascade" in proc.stdout and "Traceback" not in proc.stderr


def test_version_and_completion(lake: Path) -> None:
    proc = run_cli("--version", home=lake)
    assert proc.returncode == 0 and proc.stdout.strip().startswith("cascade 0."), proc.stdout
    env = {**os.environ, "CASCADE_HOME": str(lake), "SHELL": "/bin/bash"}  # the shell is detected from $SHELL
    show = subprocess.run([str(CASCADE), "--show-completion"], capture_output=True, text=True, env=env, timeout=120)
    assert show.returncode == 0 and "complete" in show.stdout and "_CASCADE_COMPLETE" in show.stdout, show.stderr


def test_completion_without_a_shell_parent_uses_the_login_shell(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Started from an IDE, cron or a service, no ancestor process is a shell: $SHELL names it."""
    import shellingham

    from workbench.cli import main

    def no_shell() -> tuple[str, str]:
        raise shellingham.ShellDetectionFailure()

    monkeypatch.setattr(shellingham, "detect_shell", no_shell)
    monkeypatch.setenv("SHELL", "/usr/bin/zsh")
    with pytest.raises(SystemExit) as done:
        main(["--show-completion"])
    assert done.value.code == 0
    assert "compdef" in capsys.readouterr().out  # zsh's completion script


USER_MISTAKES = [
    (("tables", "--ref", "nope"), "unknown ref 'nope'"),
    (("tables", "--ref", "main~9"), "ancestor"),
    (("sql", "select * from raw.annotations", "--ref", "dev"), "table raw.annotations does not exist on 'dev'"),
    (("sql", "select * from annotations", "--ref", "dev"), "does not exist on 'dev'"),
    (("sql", "delete from raw.nope", "--ref", "dev"), "table raw.nope does not exist on 'dev'"),
    (("sql", "create table raw.y as select 1 as a", "--ref", "v1"), "read-only"),
    (("sql", "create table raw.y as select 1 as a", "--ref", "main~1"), "read-only"),
    (("sql", "update raw.notes set sgv = 1", "--ref", "dev"), "cascade load"),
    (("sql", "create table raw.notes as select 1 as a", "--ref", "dev"), "already exists"),
    (("sql", "select 1; select 2", "--ref", "dev"), "one SQL statement"),
    (("show", "nope"), "unknown ref"),
    (("diff", "main", "dev", "--rows", "raw.nope"), "does not exist"),
    (("publish", "--ref", "dev"), "refusing to publish 'dev'"),
]


@pytest.mark.parametrize(("args", "expected"), USER_MISTAKES, ids=[" ".join(a) for a, _ in USER_MISTAKES])
def test_user_mistakes_are_one_line_and_exit_1(lake: Path, args: tuple[str, ...], expected: str) -> None:
    _one_line_error(run_cli(*args, home=lake), 1, expected, args)


def test_a_mistyped_home_is_an_error_not_a_new_lake(tmp_path: Path) -> None:
    missing = tmp_path / "typo-home"
    env = {**os.environ, "CASCADE_HOME": str(missing)}
    proc = subprocess.run([str(CASCADE), "tables"], capture_output=True, text=True, env=env, timeout=120)
    _one_line_error(proc, 1, "does not exist", "tables")
    assert "cascade init" in proc.stderr
    assert not missing.exists()
    status = subprocess.run([str(CASCADE), "status"], capture_output=True, text=True, env=env, timeout=120)
    assert status.returncode == 0 and "does not exist" in status.stdout
    assert not missing.exists()


def test_json_output_is_one_array(lake: Path) -> None:
    for args in (
        ("sql", "select _id, sgv from raw.notes order by _id", "--format", "json"),
        ("log", "main", "--format", "json"),
        ("history", "raw.notes", "--format", "json"),
        ("diff", "v1", "dev", "--format", "json"),
    ):
        proc = run_cli(*args, home=lake, check=True)
        value = json.loads(proc.stdout)
        assert isinstance(value, list), args
    rows = json.loads(run_cli("sql", "select _id from raw.notes order by 1", "-f", "json", home=lake).stdout)
    assert rows == [{"_id": "a"}, {"_id": "b"}, {"_id": "c"}]


def test_empty_ref_says_so(tmp_path: Path) -> None:
    home = tmp_path / "home"
    run_cli("init", home=home, check=True)
    proc = run_cli("tables", "--ref", "main", home=home, check=True)
    assert proc.stdout == "" and "no tables on 'main'" in proc.stderr


def test_sql_writes_are_one_commit_each_on_the_branch(lake: Path) -> None:
    run_cli("branch", "create", "scratch", "--from", "main", home=lake, check=True)
    ctas = run_cli("sql", "create table raw.x as select 1 as a union all select 2", "--ref", "scratch", home=lake)
    assert ctas.returncode == 0 and "created raw.x" in ctas.stdout and "2 row(s)" in ctas.stdout, ctas.stderr
    ins = run_cli("sql", "insert into raw.x values (3), (4)", "--ref", "scratch", home=lake, check=True)
    assert "inserted 2 row(s)" in ins.stdout
    dele = run_cli("sql", "delete from raw.x where a <= 2", "--ref", "scratch", home=lake, check=True)
    assert "deleted 2 row(s)" in dele.stdout
    log = json.loads(run_cli("log", "scratch", "-n", "3", "-f", "json", home=lake, check=True).stdout)
    assert [c["message"].split()[1] for c in log] == ["delete", "insert", "create"]
    assert all(c["tables"] == ["raw.x"] for c in log)
    rows = json.loads(run_cli("sql", "select a from raw.x order by a", "-r", "scratch", "-f", "json", home=lake).stdout)
    assert rows == [{"a": 3}, {"a": 4}]
    # the state before the delete is one commit back
    before = json.loads(
        run_cli("sql", "select count(*) as n from raw.x", "-r", "scratch~1", "-f", "json", home=lake).stdout
    )
    assert before == [{"n": 4}]
    # main did not move
    assert "raw.x" not in run_cli("tables", "--ref", "main", home=lake, check=True).stdout
    drop = run_cli("sql", "drop table raw.x", "--ref", "scratch", home=lake, check=True)
    assert "dropped raw.x" in drop.stdout


def test_diff_and_show(lake: Path) -> None:
    run_cli("branch", "create", "exp", "--from", "main", home=lake, check=True)
    run_cli("sql", "delete from raw.notes where _id = 'a'", "--ref", "exp", home=lake, check=True)
    run_cli("sql", "insert into raw.notes values ('z', 42)", "--ref", "exp", home=lake, check=True)
    diff = run_cli("diff", "main", "exp", home=lake, check=True).stdout
    assert "changed" in diff and "raw.notes" in diff and "3 -> 3 rows" in diff
    rows = json.loads(run_cli("diff", "main", "exp", "--rows", "raw.notes", "-f", "json", home=lake, check=True).stdout)
    assert sorted((r["change"], r["_id"]) for r in rows) == [("+", "z"), ("-", "a")]
    same = run_cli("diff", "main", "v1", home=lake, check=True).stdout
    assert "no differences" in same
    show = run_cli("show", "exp", home=lake, check=True).stdout
    assert "insert into raw.notes" in show and "2 -> 3 rows" in show
    parent = json.loads(run_cli("show", "exp~1", "-f", "json", home=lake, check=True).stdout)[0]
    assert parent["message"].startswith("sql: delete") and parent["changes"][0]["rows_to"] == 2
