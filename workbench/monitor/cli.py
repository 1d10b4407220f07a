"""`cascade monitor up|down|status|exporter`: thin commands over `workbench.monitor`."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the `monitor` command group."""
    monitor = typer.Typer(help="Prometheus and the pipeline metrics exporter (127.0.0.1, login admin).")

    @monitor.command("up")
    def up_command(
        scrape_interval: Annotated[str | None, typer.Option(help="override the scrape interval, e.g. 5s")] = None,
        evaluation_interval: Annotated[str | None, typer.Option(help="override the rule evaluation interval")] = None,
    ) -> None:
        """Start the exporter and Prometheus with Cascade's alert rules; print the URLs.

        Example: cascade monitor up
        """
        from workbench.monitor.prometheus import up

        result = up(scrape_interval=scrape_interval, evaluation_interval=evaluation_interval)
        for line in result.lines():
            typer.echo(line)

    @monitor.command("down")
    def down_command() -> None:
        """Stop Prometheus and the exporter.

        Example: cascade monitor down
        """
        from workbench.monitor.prometheus import down

        typer.echo("stopped" if down() else "not running")

    @monitor.command("status")
    def status_command() -> None:
        """Show whether Prometheus and the exporter run, and their URLs.

        Example: cascade monitor status
        """
        from workbench.monitor.prometheus import status

        for line in status().lines():
            typer.echo(line)

    @monitor.command("exporter")
    def exporter_command(
        port: Annotated[int, typer.Option(help="port (0 = a free one)")] = 9464,
        host: Annotated[str, typer.Option(help="address to bind (Compose: 0.0.0.0)")] = "127.0.0.1",
    ) -> None:
        """Serve the pipeline metrics at /metrics in the foreground (Ctrl-C stops).

        Example: cascade monitor exporter --port 9464
        """
        from workbench.monitor.exporter import main

        main(["--port", str(port), "--host", host])

    app.add_typer(monitor, name="monitor")
