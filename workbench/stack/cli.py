"""`cascade stack up|down|status|logs|import`."""

from __future__ import annotations

from typing import Annotated

import typer

stack_app = typer.Typer(
    help="Run the stack profile's services (S3, PostgreSQL, Nessie, Trino) natively on 127.0.0.1.",
    no_args_is_help=True,
)


@stack_app.command("up")
def up() -> None:
    """Start every service that is not running (downloads pinned artifacts once), bootstrap main/dev.  Example: cascade stack up"""
    from workbench.stack import launcher

    home = launcher.default_home()
    timings = launcher.up(home, say=typer.echo)
    typer.echo(f"stack up in {timings['total']:.1f} s under {home / 'stack'}")
    for line in launcher.endpoints(home):
        typer.echo(f"  {line}")
    typer.echo("use it with: CASCADE_PROFILE=stack cascade ...")


@stack_app.command("down")
def down() -> None:
    """Stop every service of the stack.  Example: cascade stack down"""
    from workbench.stack import launcher

    stopped = launcher.down(launcher.default_home(), say=typer.echo)
    typer.echo(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")


@stack_app.command("status")
def status() -> None:
    """Health, pid, port and memory of each service.  Example: cascade stack status"""
    from workbench.stack import launcher

    rows = launcher.status(launcher.default_home())
    typer.echo(f"{'service':<10}{'state':<10}{'pid':>8}{'port':>7}{'RSS MB':>9}")
    for s in rows:
        rss = f"{s.rss_mb:.0f}" if s.rss_mb is not None else "-"
        typer.echo(f"{s.service:<10}{s.state:<10}{s.pid or '-':>8}{s.port or '-':>7}{rss:>9}")
    bad = [s.service for s in rows if s.state != "healthy"]
    if bad:
        typer.echo(f"not healthy: {', '.join(bad)}; run `cascade stack up` to (re)start them")
        raise typer.Exit(1)


@stack_app.command("logs")
def logs(
    service: Annotated[str, typer.Argument(help="postgres|s3|nessie|trino")],
    lines: Annotated[int, typer.Option("--lines", "-n")] = 40,
) -> None:
    """The last lines of a service's log.  Example: cascade stack logs trino -n 100"""
    from workbench.errors import StackError
    from workbench.stack import launcher

    stack = launcher.StackHome(launcher.default_home())
    if service not in launcher.SERVICES:
        raise StackError(f"unknown service '{service}'; use one of {', '.join(launcher.SERVICES)}")
    path = stack.root / "postgres" / "server.log" if service == "postgres" else stack.log(service)
    if not path.exists():
        raise StackError(f"{service} has no log yet ({path}); run `cascade stack up`")
    for line in path.read_text(errors="replace").splitlines()[-lines:]:
        typer.echo(line)


@stack_app.command("secrets")
def secrets_command() -> None:
    """Generate the stack's credentials for Docker Compose; prints the --env-file to give it.  Example: docker compose -f stack/compose.yaml --env-file "$(cascade stack secrets)" up -d"""
    from workbench.stack import launcher

    typer.echo(str(launcher.compose_env(launcher.default_home())))


@stack_app.command("import")
def import_command(
    source: Annotated[
        str | None, typer.Option("--from", help="CASCADE_HOME of the embedded lake (default: this one)")
    ] = None,
) -> None:
    """Copy the embedded lake's main, dev and tags into the running stack.  Example: cascade stack import"""
    from pathlib import Path

    from workbench.settings import load_settings
    from workbench.stack import launcher
    from workbench.stack.transfer import import_lake

    home = launcher.default_home()
    embedded = load_settings(profile="embedded", home=Path(source).expanduser() if source else home)
    if not embedded.catalog_db.exists():
        from workbench.errors import StackError

        raise StackError(f"no embedded lake at {embedded.home} (no catalog.db); give --from CASCADE_HOME")
    stack = load_settings(profile="stack", home=home)
    report = import_lake(embedded, stack, say=typer.echo)
    for line in report.lines():
        typer.echo(f"  {line}")


def register(app: typer.Typer) -> None:
    app.add_typer(stack_app, name="stack")
