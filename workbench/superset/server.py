"""`cascade superset up|down|status`: Superset 6.1.0 from its own venv, natively, on 127.0.0.1.

`CASCADE_HOME/superset/` (0700) holds `superset_config.py`, the SQLite metadata database, the secret
key, the admin password when it was generated (0600), the log and the pid file. `up` installs the venv
if needed, initialises the metadata once (`db upgrade`, admin user, `init`), starts gunicorn, and
imports the dashboards bundle (idempotent: same UUIDs, overwrite). The admin password is
`CASCADE_SUPERSET_PASSWORD`, or generated and printed once.
"""

from __future__ import annotations

import hashlib
import secrets
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from workbench.monitor.process import Service, ServiceError, free_port, password, private_dir, wait_http, write_private
from workbench.settings import Settings, child_environment, get_settings
from workbench.superset.venv import ensure_venv, venv_dir

USER = "admin"
HOST = "127.0.0.1"
START_TIMEOUT_S = 180.0
CLI_TIMEOUT_S = 600

CONFIG_TEMPLATE = """\
# Written by `cascade superset up`; change it there (workbench/superset/server.py).
from pathlib import Path

_HERE = Path(__file__).resolve().parent
SECRET_KEY = (_HERE / "secret_key").read_text().strip()
SQLALCHEMY_DATABASE_URI = "sqlite:///" + str(_HERE / "superset.db")
CACHE_CONFIG = {{"CACHE_TYPE": "SimpleCache"}}
# chart data is never cached: dashboards show what was published last
DATA_CACHE_CONFIG = {{"CACHE_TYPE": "NullCache"}}
FILTER_STATE_CACHE_CONFIG = {{"CACHE_TYPE": "SimpleCache"}}
EXPLORE_FORM_DATA_CACHE_CONFIG = {{"CACHE_TYPE": "SimpleCache"}}
TALISMAN_ENABLED = False
WTF_CSRF_ENABLED = True
SESSION_COOKIE_SAMESITE = "Lax"
ENABLE_PROXY_FIX = False
SUPERSET_WEBSERVER_PORT = {port}
"""


class SupersetError(ServiceError):
    """Superset could not be installed, started or reached."""


@dataclass(frozen=True)
class SupersetStatus:
    running: bool
    url: str | None
    pid: int | None

    def lines(self) -> list[str]:
        return [f"superset: {self.url} (user {USER})" if self.url else "superset: not running"]


def superset_dir(settings: Settings) -> Path:
    return settings.home / "superset"


def _service(settings: Settings) -> Service:
    return Service("superset", superset_dir(settings))


def admin_password(settings: Settings) -> tuple[str, bool]:
    configured = settings.superset_password.get_secret_value() if settings.superset_password else None
    return password(configured, superset_dir(settings) / "admin-password")


def _port_file(settings: Settings) -> Path:
    return superset_dir(settings) / "port"


def url_of(settings: Settings) -> str | None:
    try:
        return f"http://{HOST}:{int(_port_file(settings).read_text())}/"
    except (OSError, ValueError):
        return None


def _env(settings: Settings) -> dict[str, str]:
    folder = superset_dir(settings)
    inherited = child_environment(settings)
    if settings.trino_ca is not None:
        # requests prefers these to a connection's own CA (psf/requests#3829); the Trino connection
        # names the stack's CA itself (workbench.superset.bundle.trino_database)
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            inherited.pop(name, None)
    return {
        **inherited,
        "SUPERSET_CONFIG_PATH": str(folder / "superset_config.py"),
        "FLASK_APP": "superset",
        "SUPERSET_LOAD_EXAMPLES": "no",
        "PYTHONWARNINGS": "ignore",
    }


def _superset(settings: Settings, *args: str, secret_args: int = 0) -> None:
    """Run `superset ARGS` in the venv; the last `secret_args` arguments never appear in errors."""
    exe = venv_dir(settings) / "bin" / "superset"
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, env=_env(settings), timeout=CLI_TIMEOUT_S)
    if proc.returncode != 0:
        shown = args[: len(args) - secret_args] if secret_args else args
        tail = "\n".join((proc.stderr or proc.stdout).splitlines()[-8:])
        raise SupersetError(f"`superset {' '.join(shown)}` failed:\n{tail}")


def _initialise(settings: Settings, port: int, echo: Callable[[str], None]) -> None:
    """Config, secret key, metadata database and admin user (the slow steps run once)."""
    folder = private_dir(superset_dir(settings))
    if not (folder / "secret_key").exists():
        write_private(folder / "secret_key", secrets.token_urlsafe(42) + "\n")
    write_private(folder / "superset_config.py", CONFIG_TEMPLATE.format(port=port))
    secret, _ = admin_password(settings)
    digest = hashlib.sha256(secret.encode()).hexdigest()
    marker = folder / "initialised"
    if not marker.exists():
        echo("initialising Superset's metadata database (once, about a minute) ...")
        _superset(settings, "db", "upgrade")
        _superset(settings, "init")
        _superset(
            settings,
            "fab", "create-admin", "--username", USER, "--firstname", "Cascade", "--lastname", "Admin",
            "--email", "admin@cascade.invalid", "--password", secret,
            secret_args=1,
        )  # fmt: skip
        write_private(marker, digest + "\n")
        (folder / "superset.db").chmod(0o600)
    elif marker.read_text().strip() != digest:  # CASCADE_SUPERSET_PASSWORD changed
        _superset(settings, "fab", "reset-password", "--username", USER, "--password", secret, secret_args=1)
        write_private(marker, digest + "\n")


def status(settings: Settings | None = None) -> SupersetStatus:
    settings = settings or get_settings()
    pid = _service(settings).pid()
    return SupersetStatus(running=pid is not None, url=url_of(settings) if pid else None, pid=pid)


def up(
    settings: Settings | None = None, echo: Callable[[str], None] = print, *, dashboards: bool = True
) -> SupersetStatus:
    """Install (once), initialise (once), start Superset and import the dashboards bundle."""
    settings = settings or get_settings()
    settings.ensure_home()
    secret, generated = admin_password(settings)
    if generated:  # shown before the slow steps, so a failure later cannot lose it
        echo(f"generated password for {USER} (saved 0600 in {superset_dir(settings)}, shown once): {secret}")
    current = status(settings)
    service = _service(settings)
    if not current.running:
        venv = ensure_venv(settings, echo)
        port = settings.superset_port or free_port()
        _initialise(settings, port, echo)
        service.start(
            [
                str(venv / "bin" / "gunicorn"),
                "-w", "1", "--threads", "4", "-k", "gthread", "--timeout", "120",
                "-b", f"{HOST}:{port}", "--limit-request-line", "0", "--limit-request-field_size", "0",
                "superset.app:create_app()",
            ],
            env=_env(settings),
            cwd=superset_dir(settings),
        )  # fmt: skip
        write_private(_port_file(settings), f"{port}\n")
        wait_http(f"http://{HOST}:{port}/health", service, START_TIMEOUT_S)
    url = url_of(settings)
    assert url is not None
    if dashboards:
        from workbench.superset.bundle import import_dashboards

        import_dashboards(settings)
    return SupersetStatus(True, url, service.pid())


def down(settings: Settings | None = None) -> bool:
    settings = settings or get_settings()
    return _service(settings).stop()
