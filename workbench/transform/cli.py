"""`cascade transform ...`: build the dbt layers on a branch, generate docs."""

from __future__ import annotations

from typing import Annotated

import typer

from workbench.lake.api import DEV_BRANCH

transform_app = typer.Typer(help="dbt transforms: raw → bronze → silver → gold → marts.", no_args_is_help=True)


@transform_app.command("build")
def build_command(
    select: Annotated[
        list[str] | None,
        typer.Option("--select", "-s", help="layer (bronze, silver, gold, marts) or dbt selector; repeatable"),
    ] = None,
    branch: Annotated[str, typer.Option("--branch", "-b", help="branch to read and write")] = DEV_BRANCH,
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
    ref: Annotated[
        str, typer.Option("--ref", "-r", "--branch", "-b", help="branch whose tables are documented")
    ] = DEV_BRANCH,
    serve: Annotated[bool, typer.Option("--serve", help="serve the docs on 127.0.0.1 (Ctrl-C stops)")] = False,
    port: Annotated[int, typer.Option(help="with --serve: port on 127.0.0.1 (0 = a free one)")] = 8580,
) -> None:
    """Generate the dbt docs site (index.html, catalog.json) for a branch and print its folder;
    with --serve, serve it over HTTP on 127.0.0.1 with a token and print the URL.

    Example: cascade transform docs --ref dev --serve
    """
    from workbench.transform.runner import docs_generate

    folder = docs_generate(branch=ref)
    typer.echo(str(folder))
    if serve:
        from workbench.transform.docs_server import make_server

        server, url = make_server(folder, port)
        typer.echo(f"dbt docs: {url}")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()


def register(app: typer.Typer) -> None:
    """Add `cascade transform` to the main app."""
    app.add_typer(transform_app, name="transform")
