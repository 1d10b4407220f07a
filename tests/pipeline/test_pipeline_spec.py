"""pipeline.yaml as Ploomber loads it: the tasks, their notebooks and what makes them outdated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _dag(products: Path):  # type: ignore[no-untyped-def]
    from ploomber.spec import DAGSpec

    return DAGSpec(str(ROOT / "pipeline.yaml"), env={"products": str(products)}).to_dag()


def test_the_pipeline_renders_and_the_sources_state_is_a_parameter(
    run_home: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.settings import get_settings

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("CASCADE_DEMO_END", "2026-01-14T09:42:00+00:00")
    get_settings.cache_clear()
    dag = _dag(tmp_path / "products")
    dag.render(show_progress=False)
    assert list(dag) == ["ingest", "bronze", "silver", "gold", "marts", "audit", "promote", "publish", "reports"]
    state = json.loads(dag["ingest"].params["source_state"])
    assert state["demo_end"] == "2026-01-14T09:40:00+00:00"  # the demo clock on the 5-minute grid
    assert "fetched_at" not in dag["ingest"].params  # the old {{now}} made every task outdated
    models = {dag[name].params["models"] for name in ("bronze", "silver", "gold", "marts")}
    assert len(models) == 1 and len(next(iter(models))) == 16

    # the clock moves by less than a reading: the same state, so the same parameters (up to date)
    monkeypatch.setenv("CASCADE_DEMO_END", "2026-01-14T09:44:59+00:00")
    get_settings.cache_clear()
    assert _dag(tmp_path / "products")["ingest"].params["source_state"] == dag["ingest"].params["source_state"]
    monkeypatch.setenv("CASCADE_DEMO_END", "2026-01-14T09:45:00+00:00")
    get_settings.cache_clear()
    assert _dag(tmp_path / "products")["ingest"].params["source_state"] != dag["ingest"].params["source_state"]
    get_settings.cache_clear()


def test_changing_a_dbt_model_changes_the_layers_parameter(tmp_path: Path) -> None:
    from workbench.pipeline.state import models_state

    project = tmp_path / "transforms"
    (project / "models").mkdir(parents=True)
    (project / "models" / "a.sql").write_text("select 1")
    before = models_state(str(project))
    (project / "target").mkdir()
    (project / "target" / "manifest.json").write_text("{}")  # dbt's own output does not count
    assert models_state(str(project)) == before
    (project / "models" / "a.sql").write_text("select 2")
    assert models_state(str(project)) != before


def test_the_promoted_branch_has_one_name_in_the_pipeline() -> None:
    import yaml

    spec = yaml.safe_load((ROOT / "pipeline.yaml").read_text())
    names = {
        key for task in spec["tasks"] for key, value in (task.get("params") or {}).items() if value == "{{baseline}}"
    }
    assert names == {"baseline"}  # not baseline / target / ref for one value
    for notebook in ("70_promote.py", "80_publish.py", "85_export_reports.py"):
        assert 'baseline = "main"' in (ROOT / "notebooks" / notebook).read_text()


def test_the_pipelines_branches_are_the_one_definition_in_settings() -> None:
    """env.yaml names the write and promotion branches; they are settings' DEV_BRANCH/MAIN_BRANCH, the
    defaults every function and CLI option uses (so `cascade ingest` and `ploomber build` agree)."""
    import inspect

    import yaml  # type: ignore[import-untyped]

    from workbench.config import EnvFile
    from workbench.ingest.run import ingest
    from workbench.quality.audit import audit
    from workbench.settings import DEV_BRANCH, MAIN_BRANCH

    env = yaml.safe_load((ROOT / "env.yaml").read_text())
    assert (env["branch"], env["baseline"]) == (DEV_BRANCH, MAIN_BRANCH)
    assert (EnvFile().branch, EnvFile().baseline) == (DEV_BRANCH, MAIN_BRANCH)
    assert inspect.signature(ingest).parameters["branch"].default == DEV_BRANCH
    assert inspect.signature(audit).parameters["baseline"].default == MAIN_BRANCH
