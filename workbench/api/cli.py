"""`cascade api`, `cascade hub` and `cascade token create`: thin commands over `workbench.api`."""

from __future__ import annotations

from typing import Annotated

import typer

from workbench.api import API_PORT


def register(app: typer.Typer) -> None:
    """Add the `api`, `hub` and `token` commands."""

    @app.command("api")
    def api_command(
        host: Annotated[
            str, typer.Option(help="address to listen on (keep 127.0.0.1 unless behind a proxy)")
        ] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=0, max=65535, help="port (0: any free port)")] = API_PORT,
    ) -> None:
        """Serve the glucose API (JSON, bearer tokens), its docs at /docs and the hub at /.

        Example: cascade api --port 8000   then   curl -H "Authorization: Bearer $(cascade token create --patient p001)" http://127.0.0.1:8000/api/v1/patients
        """
        from workbench.api.serve import serve

        serve(host, port, announce=lambda url: typer.echo(f"api: {url} (docs: {url}docs)", err=False))

    @app.command("hub")
    def hub_command(
        host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=0, max=65535, help="port (0: any free port)")] = API_PORT,
        expires: Annotated[str, typer.Option(help="lifetime of the login link's admin token")] = "12h",
    ) -> None:
        """Serve the hub (services, data freshness, pipeline runs) and print a login URL.

        Example: cascade hub --port 8000
        """
        from workbench.api.auth import create_token
        from workbench.api.serve import serve

        token = create_token(admin=True, expires=expires)
        serve(host, port, announce=lambda url: typer.echo(f"hub: {url}?token={token}"))

    token_app = typer.Typer(help="Bearer tokens for the API and the hub.", no_args_is_help=True)

    @token_app.command("create")
    def token_create(
        patient: Annotated[str | None, typer.Option(help="a token that reads only this patient")] = None,
        admin: Annotated[
            bool, typer.Option("--admin", help="a token for every patient, refs, metrics and the hub")
        ] = False,
        expires: Annotated[str, typer.Option(help="lifetime, e.g. 30m, 1h, 7d (at most 366d)")] = "1h",
    ) -> None:
        """Print a signed token (the key: CASCADE_API_SECRET, else CASCADE_HOME/api-secret).

        Example: T=$(cascade token create --patient p001 --expires 1h)
        """
        from workbench.api.auth import PATIENT_ID, create_token, parse_duration
        from workbench.api.errors import TokenError

        try:  # usage errors: one line, exit 2
            if admin == (patient is not None):
                raise TokenError("give exactly one of --patient P or --admin")
            if patient is not None and not PATIENT_ID.match(patient):
                raise TokenError(f"--patient {patient!r} must be 1-64 letters, digits, '.', '_' or '-'")
            lifetime = parse_duration(expires)
        except TokenError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(create_token(patient=patient, admin=admin, expires=lifetime))

    app.add_typer(token_app, name="token")
