"""`cascade docs build|serve`: the documentation site (mkdocs, material theme)."""

from __future__ import annotations

from typing import Annotated

import typer

docs_app = typer.Typer(help="The documentation site (mkdocs under docs/, built into site/).", no_args_is_help=True)


@docs_app.command("build")
def build_command(
    dbt: Annotated[bool, typer.Option("--dbt/--no-dbt", help="regenerate the dbt docs (lineage) from main")] = True,
    strict: Annotated[bool, typer.Option("--strict/--no-strict", help="fail on any warning (broken links)")] = True,
) -> None:
    """Generate the CLI and metric reference pages and the dbt docs, then build the site strictly.

    Example: cascade docs build
    """
    from workbench.docs.build import build_site

    build_site(strict=strict, dbt=dbt, echo=typer.echo)


@docs_app.command("serve")
def serve_command(port: Annotated[int, typer.Option(min=1, max=65535)] = 8001) -> None:
    """Serve the documentation on http://127.0.0.1:PORT/ and rebuild on changes.

    Example: cascade docs serve --port 8001
    """
    from workbench.docs.build import serve_site

    serve_site(port=port)


def register(app: typer.Typer) -> None:
    """Add `cascade docs` to the main app."""
    app.add_typer(docs_app, name="docs")
