"""Runner details that need no lake: target folders, vars, layer selection; notebook hygiene."""

from __future__ import annotations

import ast
import fcntl
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.settings import load_settings
from workbench.transform import runner

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
LAYER_NOTEBOOK = "20_layer.py"  # one notebook, four pipeline tasks (bronze, silver, gold, marts)


def test_target_folder_is_private_while_another_run_holds_it(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    with runner._target_dir(settings) as first:
        assert first == settings.home / "dbt" / "target"
        with runner._target_dir(settings) as second:  # a concurrent run (same home) gets its own
            assert second != first and second.parent == settings.home / "dbt"
            assert second.is_dir()
        assert not second.exists()  # private folders are removed afterwards
    lock = open(settings.home / "dbt" / "target.lock", "a+")  # noqa: SIM115 - released at once
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the shared folder's lock was released
    lock.close()


def test_vars_carry_branch_and_settings(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "h", duckdb_memory_limit="3GB", trino_port=9999)
    values = runner.dbt_vars("feature-x", settings, {"agp_days": 7})
    assert values["branch"] == "feature-x"
    assert values["cascade_home"] == str(tmp_path / "h")
    assert values["duckdb_memory_limit"] == "3GB" and values["trino_port"] == 9999
    assert values["agp_days"] == 7
    assert values["cascade_demo_end"] == ""  # no pinned clock: the transforms use the latest ingestion
    pinned = load_settings(home=tmp_path / "h", demo_end="2026-01-14T09:42:00+00:00")
    assert runner.dbt_vars("b", pinned)["cascade_demo_end"] == "2026-01-14T09:42:00+00:00"  # reaches the plugin
    # the SQL macros' range limits are workbench.metrics' (one definition)
    assert values["glucose_limits"] == {"very_low": 54, "low": 70, "high": 180, "very_high": 250, "tight_high": 140}


def test_layer_names_select_their_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def fake_run_dbt(command: str, **kwargs: object) -> str:
        seen.update(kwargs, command=command)
        return "ran"

    monkeypatch.setattr(runner, "run_dbt", fake_run_dbt)
    monkeypatch.setattr(runner, "_compute", lambda *args: seen.setdefault("computed", True) and None)
    assert runner.build(select=["silver", "mrt_agp_profile+"], branch="b", full_refresh=True) == "ran"
    assert seen["command"] == "build"
    # a mart selector brings the Python metrics step (run inside the same dbt invocation on duckdb)
    assert seen["select"] == ["path:models/silver", "mrt_agp_profile+", runner.COMPUTED_MODEL]
    assert seen["branch"] == "b" and seen["full_refresh"] is True
    assert "computed" not in seen  # not computed outside dbt on duckdb


def test_on_trino_the_runner_computes_between_two_dbt_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []

    def fake_run_dbt(command: str, **kwargs: object) -> runner.BuildResult:
        calls.append(("dbt", kwargs.get("select"), kwargs.get("exclude")))
        return runner.BuildResult(command=command, branch="b", target="trino", success=True, seconds=1.0)

    monkeypatch.setattr(runner, "run_dbt", fake_run_dbt)
    monkeypatch.setattr(runner, "_compute", lambda *args: calls.append("computed"))
    result = runner.build(branch="b", target="trino")
    assert calls == [("dbt", None, [runner.MARTS_PATH]), "computed", ("dbt", [runner.MARTS_PATH], None)]
    assert result.success and result.seconds == 2.0


def test_profiles_define_duckdb_and_trino_targets() -> None:
    import yaml

    profiles = yaml.safe_load((runner.PROJECT_DIR / "profiles.yml").read_text())
    outputs = profiles["cascade"]["outputs"]
    assert outputs["duckdb"]["type"] == "duckdb" and outputs["trino"]["type"] == "trino"
    assert outputs["duckdb"]["plugins"][0]["module"] == "workbench.transform.plugin"


def test_the_branch_reaches_dbt_only_from_settings(cascade_home: Path) -> None:
    """No branch name in the dbt configuration: the runner passes settings' branch to every invocation."""
    import yaml

    from workbench.settings import DEV_BRANCH, get_settings

    project = yaml.safe_load((runner.PROJECT_DIR / "dbt_project.yml").read_text())
    assert "branch" not in project["vars"]
    profiles = yaml.safe_load((runner.PROJECT_DIR / "profiles.yml").read_text())
    assert profiles["cascade"]["outputs"]["duckdb"]["plugins"][0]["config"]["ref"] == "{{ var('branch') }}"
    assert runner.dbt_vars(DEV_BRANCH, get_settings())["branch"] == DEV_BRANCH


def test_the_layer_notebook_is_thin_and_parameterized() -> None:
    source = (NOTEBOOKS / LAYER_NOTEBOOK).read_text()
    tree = ast.parse(source)
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    cells = source.split("# %%")
    parameters = next(c for c in cells if 'tags=["parameters"]' in c)
    for assignment in ("upstream = None", "product = None", 'branch = "dev"', 'layer = "bronze"'):
        assert assignment in parameters
    assert "build_layer(layer, branch=branch" in source
    assert "raise_for_failures()" in source


def test_four_pipeline_tasks_share_the_layer_notebook() -> None:
    import yaml

    spec = yaml.safe_load((NOTEBOOKS.parent / "pipeline.yaml").read_text())
    layers = {t["name"]: t for t in spec["tasks"] if t["source"] == f"notebooks/{LAYER_NOTEBOOK}"}
    assert set(layers) == {"bronze", "silver", "gold", "marts"}
    assert all(task["params"]["layer"] == name for name, task in layers.items())


def test_dbt_starts_without_compiling_the_iri_grammar() -> None:
    """dbt's import pulls in jsonschema's iri checker; its Lark grammar is compiled on first use only,
    and iri validation still works (a fresh interpreter, so no earlier import hides the effect)."""
    code = (
        "import sys\n"
        "from workbench.transform.runner import _defer_iri_grammar\n"
        "_defer_iri_grammar()\n"
        "import dbt.cli.main, jsonschema\n"
        "assert 'lark' not in sys.modules, 'the iri grammar was compiled at import'\n"
        "check = jsonschema.Draft7Validator.FORMAT_CHECKER\n"
        "v = jsonschema.Draft7Validator({'format': 'iri'}, format_checker=check)\n"
        "assert v.is_valid('https://example.org/ä') and not v.is_valid('no scheme here')\n"
        "assert 'lark' in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
