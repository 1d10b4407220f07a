"""`cascade superset up|down|status|export`: thin commands over `workbench.superset`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `superset` command group."""
    group = typer.Typer(help="Superset with the Cascade dashboards (127.0.0.1, login admin).")

    @group.command("up")
    def up_command() -> None:
        """Install (once), start Superset and import the dashboards; print the URL.

        Example: cascade superset up
        """
        from workbench.superset.server import up

        for line in up(echo=lambda s: typer.echo(s, err=True)).lines():
            typer.echo(line)

    @group.command("down")
    def down_command() -> None:
        """Stop Superset.

        Example: cascade superset down
        """
        from workbench.superset.server import down

        typer.echo("stopped" if down() else "not running")

    @group.command("status")
    def status_command() -> None:
        """Whether Superset runs, and its URL.

        Example: cascade superset status
        """
        from workbench.superset.server import status

        for line in status().lines():
            typer.echo(line)

    @group.command("export")
    def export_command() -> None:
        """Write the running dashboards back into dashboards/superset/ (after editing them in Superset).

        Example: cascade superset export && git diff dashboards/superset
        """
        from workbench.superset.bundle import export_dashboards, write_bundle

        for path in write_bundle(export_dashboards()):
            typer.echo(str(path))

    app.add_typer(group, name="superset")
