"""`cascade postgres ...` and `cascade publish`: thin commands over `workbench.publish`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workbench.publish import postgres


def register(app: typer.Typer) -> None:
    """Add the `postgres` command group and the `publish` command."""
    pg = typer.Typer(help="The publishing PostgreSQL server (embedded, or CASCADE_POSTGRES_URL).")

    @pg.command("url")
    def url_command() -> None:
        """Print the connection URL, starting the embedded server if needed.

        Example: psql "$(cascade postgres url)"
        """
        typer.echo(postgres.connection_url())

    @pg.command("status")
    def status_command() -> None:
        """Show whether the server runs, where, and since when (never prints a password).

        Example: cascade postgres status
        """
        for line in postgres.status().lines():
            typer.echo(line)

    @pg.command("stop")
    def stop_command() -> None:
        """Stop the embedded server (it restarts on demand).

        Example: cascade postgres stop
        """
        typer.echo("stopped" if postgres.stop() else "not running")

    app.add_typer(pg, name="postgres")

    @app.command("publish")
    def publish_command(
        ref: Annotated[str, typer.Option(help="lake ref the marts are read from")] = "main",
        config: Annotated[Path | None, typer.Option(help="publish.yaml to use (default: nearest)")] = None,
    ) -> None:
        """Publish the marts listed in publish.yaml from the lake to PostgreSQL schema `marts`.

        Example: cascade publish --ref main
        """
        from workbench.publish.publisher import load_config, publish_marts

        summary = publish_marts(ref, config=load_config(config))
        for line in summary.lines():
            typer.echo(line)
