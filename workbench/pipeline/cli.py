"""`cascade run`, `cascade runs`, `cascade schedule`: thin commands over `workbench.pipeline`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the pipeline commands."""

    @app.command("run")
    def run_command(
        pipeline: Annotated[Path | None, typer.Option(help="pipeline.yaml (default: nearest one)")] = None,
        force: Annotated[bool, typer.Option(help="run every task, even up-to-date ones")] = False,
        every: Annotated[str | None, typer.Option(help="repeat on this interval, e.g. 15m")] = None,
        max_runs: Annotated[int | None, typer.Option(help="with --every: stop after this many runs")] = None,
        wait: Annotated[float, typer.Option(help="seconds to wait for a run in progress")] = 0.0,
        audit: Annotated[
            list[str] | None,
            typer.Option("--audit", help="an audit threshold for this run, KEY=VALUE (repeatable)"),
        ] = None,
        backfill: Annotated[
            bool, typer.Option(help="fetch every site's whole history again; old data is not judged stale")
        ] = False,
    ) -> None:
        """Run the pipeline once (or --every interval), one run at a time; reports go to the run folder.

        Example: cascade run --every 15m
        Example: cascade run --audit max_staleness_hours=72 --audit gap_severity=fail
        Example: cascade run --backfill
        """
        from workbench.errors import CascadeError
        from workbench.pipeline.runner import RunResult, parse_assignments, run_every, run_pipeline
        from workbench.pipeline.schedule import parse_every

        try:
            thresholds = parse_assignments(audit)
        except CascadeError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None

        def once() -> RunResult:
            return run_pipeline(pipeline, force=force, lock_wait_s=wait, audit=thresholds, backfill=backfill)

        if every is None:
            result = once()
            for line in result.lines():
                typer.echo(line)
            if result.status != "success":
                raise typer.Exit(1)
            return
        run_every(parse_every(every), max_runs=max_runs, run=once, echo=typer.echo)

    @app.command("runs")
    def runs_command(
        limit: Annotated[int, typer.Option("--limit", "-n", help="how many runs")] = 20,
        run_id: Annotated[str | None, typer.Argument(help="show the tasks of this run")] = None,
    ) -> None:
        """List recent pipeline runs (newest first), or the tasks of one run.

        Example: cascade runs -n 5
        """
        from workbench.pipeline.history import format_runs, get_run, list_runs

        if run_id is None:
            for line in format_runs(list_runs(limit)):
                typer.echo(line)
            return
        run = get_run(run_id)
        typer.echo(f"run {run.run_id}: {run.status}")
        for task in run.tasks:
            seconds = f"{task.seconds:.1f}s" if task.seconds is not None else "-"
            rows = "" if task.rows is None else f" rows={task.rows}"
            commits = f" commits={','.join(task.commit_ids)}" if task.commit_ids else ""
            error = f" error={task.error}" if task.error else ""
            typer.echo(f"  {task.task:<30} {task.status:<8} {seconds:>8}{rows}{commits}{error}")
        from workbench.pipeline.recovery import inspect_hint

        hint = inspect_hint(run.run_id)
        if hint is not None:
            typer.echo(hint)

    @app.command("schedule")
    def schedule_command(
        every: Annotated[str, typer.Option(help="interval, e.g. 15m, 1h")],
        install: Annotated[bool, typer.Option(help="write the line into your crontab")] = False,
        systemd: Annotated[bool, typer.Option(help="print a systemd user service + timer instead")] = False,
    ) -> None:
        """Print (or --install) a crontab line that runs `cascade run` every interval.

        Example: cascade schedule --every 15m --install
        """
        from workbench.pipeline.schedule import cron_line, install_crontab, parse_every, run_command, systemd_units

        seconds = parse_every(every)
        command = run_command()
        if systemd:
            for name, content in systemd_units(seconds, command).items():
                typer.echo(f"# ~/.config/systemd/user/{name}\n{content}")
            typer.echo("# then: systemctl --user daemon-reload && systemctl --user enable --now cascade-pipeline.timer")
            return
        line = cron_line(seconds, command)
        if install:
            install_crontab(line)
            typer.echo(f"installed in your crontab:\n{line}")
        else:
            typer.echo(line)
