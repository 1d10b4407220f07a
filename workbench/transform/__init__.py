"""dbt transforms: the runner (`build`, `docs`) and the dbt-duckdb plugin writing Iceberg tables."""

from __future__ import annotations

from workbench.transform.runner import BuildResult, ModelResult, TestResult, build, docs_generate

__all__ = ["BuildResult", "ModelResult", "TestResult", "build", "docs_generate"]
