"""`cascade ingest` and `cascade demo-nightscout`: thin wrappers over `workbench.ingest`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workbench.lake.api import DEV_BRANCH

DEMO_SECRET_ENV = "CASCADE_DEMO_SECRET"
PUBLIC_DEMO_SECRET = "cascade-demo-secret"


def register(app: typer.Typer) -> None:
    """Add the ingestion commands to the `cascade` app."""

    @app.command("ingest")
    def ingest_command(
        branch: Annotated[str, typer.Option(help="target branch of the raw tables")] = DEV_BRANCH,
        site: Annotated[list[str] | None, typer.Option("--site", help="site id (repeatable); default all")] = None,
        full_resync: Annotated[bool, typer.Option("--full-resync", help="forget the cursor, refetch all")] = False,
        config: Annotated[Path | None, typer.Option(help="sites file (default ./sites.yaml, HOME/sites.yaml)")] = None,
    ) -> None:
        """Fetch Nightscout sites into raw.glucose_entries / raw.treatments on a branch.

        Without a sites file the built-in demo Nightscout server is started and ingested.

        Example: cascade ingest --branch dev --site alice
        """
        from workbench.ingest.run import ingest

        report = ingest(
            branch=branch, site=site or None, full_resync=full_resync, config=config, raise_on_failure=False
        )
        typer.echo(report.summary())
        report.raise_for_failures()  # after the summary: exit 1 naming each failed site

    @app.command("demo-nightscout")
    def demo_nightscout_command(
        port: Annotated[int, typer.Option(help="port to listen on")] = 1337,
        patients: Annotated[int, typer.Option(help="simulated patients (one site each)")] = 2,
        days: Annotated[float, typer.Option(help="days of history up to now")] = 14,
        seed: Annotated[int, typer.Option(help="simulation seed (same seed, same data)")] = 42,
        host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
        secret_env: Annotated[str, typer.Option(help="variable holding the API secret")] = DEMO_SECRET_ENV,
        live: Annotated[
            bool, typer.Option("--live/--frozen", help="a live clock: a new reading every 5 simulated minutes")
        ] = False,
        speed: Annotated[
            float,
            typer.Option(min=0.001, help="with --live: simulated seconds per real second (60 = an hour a minute)"),
        ] = 1.0,
        end: Annotated[
            str | None, typer.Option(help="the simulated 'now' at start, ISO 8601 (default: $CASCADE_DEMO_END or now)")
        ] = None,
        reserve_days: Annotated[
            float, typer.Option(min=0, help="with --live: how long the clock may run, in days")
        ] = 7,
    ) -> None:
        """Serve simulated CGM data with the Nightscout REST API v1 (one site per patient).

        The API secret is read from $CASCADE_DEMO_SECRET (or --secret-env NAME); when it is not set
        the public demo secret "cascade-demo-secret" is used.

        With --live the clock runs: from --end (or now), `--speed` simulated seconds per second, a new
        reading every 5 simulated minutes, for --reserve-days; without it the data is a frozen snapshot.

        Example: cascade demo-nightscout --port 1337 --patients 3 --days 30 --seed 7 --live --speed 60
        """
        from datetime import UTC, datetime

        from workbench.demo.server import LiveClock, serve_forever
        from workbench.demo.simulate import DemoDataset, describe
        from workbench.settings import env_value, get_settings

        secret = env_value(secret_env) or PUBLIC_DEMO_SECRET
        try:
            start = datetime.fromisoformat(end) if end else get_settings().demo_end
            if start is not None and start.tzinfo is None:
                start = start.replace(tzinfo=UTC)
        except ValueError:
            raise typer.BadParameter(
                f"{end!r} is not an ISO 8601 time, e.g. 2026-03-01T08:00:00+00:00", param_hint="--end"
            ) from None
        dataset = DemoDataset(
            seed=seed, patients=patients, days=days, end=start, reserve_days=reserve_days if live else 1.0
        )
        clock = LiveClock(dataset.now, speed=speed) if live else None
        typer.echo(describe(dataset))
        for member in dataset.members:
            typer.echo(f"site {member.patient_id}: http://{host}:{port}/{member.patient_id}")
        source = f"${secret_env}" if env_value(secret_env) else "the public demo secret"
        typer.echo(f"API secret: {source} (send its SHA-1 hex in the api-secret header). Ctrl-C stops.")
        if clock is not None:
            typer.echo(
                f"live clock from {dataset.now.isoformat()} at {speed:g}x: a new reading every 5 simulated minutes"
            )
        serve_forever(dataset, secret, host=host, port=port, clock=clock)
