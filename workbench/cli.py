"""The `cascade` command: a thin typer layer over the same functions the notebooks call.

Each area of the package contributes its commands through `workbench/<area>/cli.py: register(app)`,
so the areas stay independent. Every mistake ends in one line on stderr, never a traceback:
usage errors (unknown command or option, bad value, missing argument) exit 2 as click does;
user errors (`CascadeError`: unknown ref or table, bad configuration, ...) exit 1.
Shared option definitions are in `workbench/cli_options.py`. Heavy modules are imported inside
the commands, so `cascade --help` stays fast.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated

import typer
from typer._click import exceptions as click_exceptions  # typer 0.29 bundles its own click

from workbench.errors import CascadeError, SettingsError

app = typer.Typer(
    name="cascade",
    help="Cascade: a notebook-centric lakehouse workbench for CGM data.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Areas that add commands; a missing module is skipped (the area has not landed yet).
_AREAS = ("lake", "ingest", "transform", "publish", "pipeline", "viz", "api", "docs", "monitor", "superset", "stack")
# Commands that run without an existing CASCADE_HOME (they create it, or do not use it).
_NO_HOME_NEEDED = {"init", "demo", "demo-nightscout", "status", "lab", "schedule", "docs", "stack"}


def _register_areas() -> None:
    for area in _AREAS:
        try:
            module = importlib.import_module(f"workbench.{area}.cli")
        except ModuleNotFoundError as exc:
            if exc.name in (f"workbench.{area}", f"workbench.{area}.cli"):
                continue
            raise
        module.register(app)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("cascade-workbench")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
            from workbench import __version__ as number
        typer.echo(f"cascade {number}")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", "-V", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Cascade: a notebook-centric lakehouse workbench for CGM data."""
    if ctx.invoked_subcommand and ctx.invoked_subcommand not in _NO_HOME_NEEDED and not ctx.resilient_parsing:
        from workbench.settings import get_settings

        home = get_settings().home
        if not home.is_dir():
            raise SettingsError(
                f"CASCADE_HOME {home} does not exist; check the spelling, or create a lake there with "
                "`cascade init` (or `make demo`)"
            )


_register_areas()


@app.command("demo")
def demo() -> None:
    """Run the whole pipeline on the embedded default (demo Nightscout data) and print a summary.

    Example: cascade demo
    """
    from workbench.demo import run_demo

    if not run_demo(echo=typer.echo):
        raise typer.Exit(1)


@app.command("init")
def init() -> None:
    """Create an empty lake in CASCADE_HOME (branches main and dev).

    Example: CASCADE_HOME=~/cgm-lake cascade init
    """
    from workbench.lake.store import open_lake
    from workbench.settings import get_settings

    settings = get_settings()
    existed = (settings.home / "catalog.db").is_file()
    settings.ensure_home()
    settings.home.chmod(0o700)
    open_lake(settings)
    typer.echo(f"{'lake already exists' if existed else 'created an empty lake'} in {settings.home}")


@app.command("status")
def status() -> None:
    """Say which lake, profile, PostgreSQL and sites are active (never prints a secret).

    Example: cascade status
    """
    from workbench.status import status_lines

    for line in status_lines():
        typer.echo(line)


@app.command("lab")
def lab(
    port: Annotated[int, typer.Option(help="port on 127.0.0.1 (0 = a free one)")] = 8888,
    browser: Annotated[bool, typer.Option("--browser/--no-browser", help="open a web browser")] = True,
) -> None:
    """Start JupyterLab on 127.0.0.1 with a token, the project's notebooks, kernel and settings.

    Opens `.py` notebooks (jupytext, percent format) with Ploomber's parameter injection.
    Ctrl-C stops it.  Example: cascade lab --no-browser
    """
    import os
    import secrets

    from workbench.lab import lab_command, lab_environment, project_root

    root = project_root()
    if root is None:
        raise SettingsError("no pipeline.yaml here or in a parent folder; run `cascade lab` inside the project")
    env = lab_environment()
    env.setdefault("JUPYTER_TOKEN", secrets.token_hex(24))  # in the environment, not on the command line
    argv = lab_command(root, port, browser, token=None)
    sys.stdout.flush()
    os.execve(argv[0], argv, env)


def _one_line(exc: click_exceptions.ClickException) -> str:
    """A click usage error as one line (click already suggests a close command or option)."""
    text = exc.format_message().strip()
    message = text.splitlines()[0] if text else type(exc).__name__
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else "cascade"
    return f"error: {message} (see `{path} --help`)"


_COMPLETION_FLAGS = ("--show-completion", "--install-completion")


def _completion_shell_fallback(argv: list[str]) -> None:
    """Typer finds the shell for `--show/--install-completion` in the process tree only; started
    without a shell parent (an IDE, cron, a service) it gives up ("Shell  not supported"). Then the
    login shell ($SHELL) is used, as shellingham's documentation advises."""
    if not any(arg in _COMPLETION_FLAGS for arg in argv):
        return
    import os

    from typer import completion

    detect = completion._get_shell_name

    def shell_name() -> str | None:
        return detect() or Path(os.environ.get("SHELL", "")).name or None

    completion._get_shell_name = shell_name


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app; every mistake becomes one line and an exit code."""
    from workbench.privacy import private_umask

    private_umask()  # everything a command writes (lake, notebooks, logs) is private
    argv = sys.argv[1:] if argv is None else argv
    _completion_shell_fallback(argv)
    try:
        code = app(args=argv, prog_name="cascade", standalone_mode=False)
        if isinstance(code, int) and code != 0:
            sys.exit(code)
    except CascadeError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(exc.exit_code)
    except click_exceptions.NoArgsIsHelpError as exc:
        typer.echo(exc.ctx.get_help())
        sys.exit(exc.exit_code)
    except click_exceptions.ClickException as exc:
        typer.secho(_one_line(exc), err=True, fg=typer.colors.RED)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except BrokenPipeError:  # `cascade sql ... | head`
        sys.stderr.close()
        sys.exit(0)
    except Exception as exc:
        from workbench.settings import debug_enabled

        if debug_enabled():
            raise
        where = Path(exc.__traceback__.tb_frame.f_code.co_filename).name if exc.__traceback__ else "?"
        first = (str(exc).strip().splitlines() or [""])[0]
        typer.secho(
            f"error: unexpected {type(exc).__name__}: {first} (in {where}; rerun with CASCADE_DEBUG=1 "
            "for the traceback and report it)",
            err=True,
            fg=typer.colors.RED,
        )
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
