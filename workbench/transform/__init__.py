"""dbt transforms: the runner (`build`, `docs`) and the dbt-duckdb plugin writing Iceberg tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.transform.runner import BuildResult, ModelResult, TestResult, build, docs_generate

__all__ = ["BuildResult", "ModelResult", "TestResult", "build", "docs_generate"]


def __getattr__(name: str) -> Any:
    """Import lazily: `cascade` loads this package for its commands and must start fast."""
    if name in __all__:
        from workbench.transform import runner

        return getattr(runner, name)
    raise AttributeError(name)
