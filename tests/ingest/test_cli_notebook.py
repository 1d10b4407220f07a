"""`cascade ingest` / `cascade demo-nightscout` and the ingest notebook's shape."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

import pytest
from ingest_helpers import SECRET, SECRET_ENV

from workbench.demo.server import DemoServer

ROOT = Path(__file__).resolve().parents[2]


def cascade(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """Run `cascade ARGS` in-process through the real entry point; its exit code."""
    from workbench.cli import main

    monkeypatch.setattr(sys, "argv", ["cascade", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_cli_ingest_reports_counts_and_auth_errors_in_one_line(
    demo: DemoServer,
    tmp_path: Path,
    cascade_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sites = tmp_path / "sites.yaml"
    sites.write_text(
        f"sites:\n  - id: one\n    patient_id: p001\n    url: {demo.site_url('p001')}\n    secret_env: {SECRET_ENV}\n"
    )
    monkeypatch.setenv(SECRET_ENV, SECRET)
    assert cascade(monkeypatch, "ingest", "--config", str(sites), "--site", "one", "--branch", "dev") == 0
    out = capsys.readouterr().out
    expected = demo.control.dataset.expected_valid_entries("p001")
    assert "one (p001): fetched" in out and f"new {expected}," in out

    monkeypatch.setenv(SECRET_ENV, "wrong-secret")
    assert cascade(monkeypatch, "ingest", "--config", str(sites)) == 1
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [
        f"error: Nightscout site {demo.site_url('p001')} refused access (HTTP 401); check the secret in {SECRET_ENV}"
    ]
    assert "wrong-secret" not in captured.out + captured.err

    assert cascade(monkeypatch, "ingest", "--config", str(sites), "--site", "nope") == 1
    assert "unknown site nope; configured: one" in capsys.readouterr().err


def test_cli_demo_nightscout_builds_the_seeded_dataset(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import workbench.demo.server as demo_server

    served: dict[str, Any] = {}
    monkeypatch.setattr(
        demo_server, "serve_forever", lambda dataset, secret, host, port, clock=None: served.update(locals())
    )
    monkeypatch.setenv("CASCADE_DEMO_SECRET", "abc-not-shown")
    args = ("demo-nightscout", "--port", "1444", "--patients", "3", "--days", "2", "--seed", "5")
    assert cascade(monkeypatch, *args) == 0
    out = capsys.readouterr().out
    dataset = served["dataset"]
    assert (served["port"], served["secret"], dataset.seed, len(dataset.members), dataset.days) == (
        1444,
        "abc-not-shown",
        5,
        3,
        2,
    )
    assert "site p003: http://127.0.0.1:1444/p003" in out and "abc-not-shown" not in out
    assert "$CASCADE_DEMO_SECRET" in out
    assert served["clock"] is None  # a frozen snapshot unless --live


def test_notebook_is_thin_and_has_the_parameters_cell() -> None:
    source = (ROOT / "notebooks" / "10_ingest_nightscout.py").read_text()
    tree = ast.parse(source)
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef | ast.Lambda)]
    cell = source.split('# %% tags=["parameters"]')[1].split("# %%")[0]
    params = {n.targets[0].id: ast.literal_eval(n.value) for n in ast.parse(cell).body}  # type: ignore[attr-defined]
    required = {"upstream": None, "product": None, "branch": "dev", "sites": None, "full_resync": False}
    assert {k: params.get(k, "missing") for k in required} == required
    assert "secret" not in cell.lower()
