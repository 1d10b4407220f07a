"""`cascade postgres ...` and `cascade publish`: thin commands over `workbench.publish`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workbench.lake.api import MAIN_BRANCH


def register(app: typer.Typer) -> None:
    """Add the `postgres` command group and the `publish` command."""
    pg = typer.Typer(help="The publishing PostgreSQL server (embedded, or CASCADE_POSTGRES_URL).")

    @pg.command("url")
    def url_command() -> None:
        """Print the connection URL, starting the embedded server if needed.

        Example: psql "$(cascade postgres url)"
        """
        from workbench.publish import postgres

        typer.echo(postgres.connection_url())

    @pg.command("status")
    def status_command() -> None:
        """Show whether the server runs, where, and since when (never prints a password).

        Example: cascade postgres status
        """
        from workbench.publish import postgres

        for line in postgres.status().lines():
            typer.echo(line)

    @pg.command("stop")
    def stop_command() -> None:
        """Stop the embedded server (it restarts on demand).

        Example: cascade postgres stop
        """
        from workbench.publish import postgres

        typer.echo("stopped" if postgres.stop() else "not running")

    app.add_typer(pg, name="postgres")

    @app.command("publish")
    def publish_command(
        ref: Annotated[str, typer.Option("--ref", "-r", help="lake ref the marts are read from")] = MAIN_BRANCH,
        config: Annotated[Path | None, typer.Option(help="publish.yaml to use (default: nearest)")] = None,
        force: Annotated[bool, typer.Option("--force", help="publish a ref other than main (un-audited)")] = False,
    ) -> None:
        """Publish the marts listed in publish.yaml from the lake to PostgreSQL schema `marts`.

        Only `main` (audited, promoted) is published unless --force.  Example: cascade publish
        """
        from workbench.errors import RefError
        from workbench.publish.publisher import load_config, publish_marts

        if ref != MAIN_BRANCH and not force:
            raise RefError(
                f"refusing to publish '{ref}': readers of the published marts expect audited data from main; "
                f"promote it (`cascade merge {ref} --into main`) or pass --force"
            )

        summary = publish_marts(ref, config=load_config(config))
        for line in summary.lines():
            typer.echo(line)
