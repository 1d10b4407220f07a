"""`cascade transform ...`: build the dbt layers on a branch, generate docs."""

from __future__ import annotations

from typing import Annotated

import typer

transform_app = typer.Typer(help="dbt transforms: raw → bronze → silver → gold → marts.", no_args_is_help=True)


@transform_app.command("build")
def build_command(
    select: Annotated[
        list[str] | None,
        typer.Option("--select", "-s", help="layer (bronze, silver, gold, marts) or dbt selector; repeatable"),
    ] = None,
    branch: Annotated[str, typer.Option("--branch", "-b", help="branch to read and write")] = "dev",
    full_refresh: Annotated[bool, typer.Option("--full-refresh", help="rebuild incremental models")] = False,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="dbt selector to leave out")] = None,
) -> None:
    """Run `dbt build` (models, data tests, unit tests) on a branch.

    Example: cascade transform build --select silver --branch dev
    """
    from workbench.transform.errors import TransformError
    from workbench.transform.runner import build

    result = build(select=select, branch=branch, full_refresh=full_refresh, exclude=exclude)
    for model in result.models:
        rows = "" if model.rows_written is None else f"{model.rows_written} rows"
        typer.echo(f"{model.status:8} {model.table:40} {model.write_mode or '':14} {rows}")
    summary = result.summary()
    typer.echo(
        f"{summary['models_built']} models built, {summary['rows_written']} rows written, "
        f"{summary['tests_passed']} tests passed, {summary['tests_failed']} failed "
        f"on '{branch}' in {summary['seconds']} s"
    )
    if not result.success:
        raise TransformError("dbt build failed: " + "; ".join(result.failures()[:5]))


@transform_app.command("docs")
def docs_command(
    branch: Annotated[str, typer.Option("--branch", "-b", help="branch whose tables are documented")] = "dev",
) -> None:
    """Generate the dbt docs site (index.html, catalog.json) for a branch and print its folder.

    Example: cascade transform docs --branch dev
    """
    from workbench.transform.runner import docs_generate

    typer.echo(str(docs_generate(branch=branch)))


def register(app: typer.Typer) -> None:
    """Add `cascade transform` to the main app."""
    app.add_typer(transform_app, name="transform")
