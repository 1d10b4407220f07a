"""The `cascade` command: a thin typer layer over the same functions the notebooks call.

Each area of the package contributes its commands through `workbench/<area>/cli.py: register(app)`,
so the areas stay independent. User errors (`CascadeError`) print one line and exit non-zero.
"""

from __future__ import annotations

import importlib
import sys

import typer

from workbench.errors import CascadeError

app = typer.Typer(
    name="cascade",
    help="Cascade: a notebook-centric lakehouse workbench for CGM data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Areas that add commands; a missing module is skipped (the area has not landed yet).
_AREAS = ("lake", "ingest", "transform", "publish", "pipeline", "viz", "api", "docs", "monitor", "superset", "stack")


def _register_areas() -> None:
    for area in _AREAS:
        try:
            module = importlib.import_module(f"workbench.{area}.cli")
        except ModuleNotFoundError as exc:
            if exc.name in (f"workbench.{area}", f"workbench.{area}.cli"):
                continue
            raise
        module.register(app)


_register_areas()


@app.command("demo")
def demo() -> None:
    """Run the whole pipeline on the embedded default (demo Nightscout data) and print a summary.

    Example: cascade demo
    """
    from workbench.demo import run_demo

    if not run_demo(echo=typer.echo):
        raise typer.Exit(1)


def main() -> None:
    """Console entry point: run the app, turning user errors into one clear line."""
    from workbench.settings import private_umask

    private_umask()  # everything a command writes (lake, notebooks, logs) is private
    try:
        code = app(standalone_mode=False)  # returns the code of a `typer.Exit(code)`
        if isinstance(code, int) and code != 0:
            sys.exit(code)
    except CascadeError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as exc:  # click usage errors come through here in non-standalone mode
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":  # pragma: no cover
    main()
