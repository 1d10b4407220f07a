"""`cascade monitor up|down|status`: Debian's Prometheus and the pipeline exporter, natively.

Everything lives under `CASCADE_HOME/monitor/` (0700): the configuration rendered from
`stack/prometheus/` (the one source of truth, also mounted by Compose — only the `targets/` files
differ), the TSDB, logs, pid files and the generated web password. Both servers listen on 127.0.0.1;
Prometheus's web UI and API ask for user `admin` and the password from `CASCADE_MONITOR_PASSWORD`
(or the generated one in `monitor/prometheus-password`, printed once).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import bcrypt
import yaml  # type: ignore[import-untyped]  # no stubs pinned (types-PyYAML)

from workbench.monitor.process import Service, ServiceError, free_port, password, private_dir, wait_http, write_private
from workbench.settings import Profile, Settings, child_environment, get_settings

CONFIG_SOURCE = Path(__file__).resolve().parents[2] / "stack" / "prometheus"
USER = "admin"
HOST = "127.0.0.1"
START_TIMEOUT_S = 90.0
NESSIE_MANAGEMENT_PORT = 9001  # Nessie's /q/metrics (moved off 9000, see stack-recipes)


class MonitorError(ServiceError):
    """Prometheus is missing, or a monitoring server could not start."""


@dataclass(frozen=True)
class MonitorStatus:
    running: bool
    url: str | None
    exporter_url: str | None
    prometheus_pid: int | None
    exporter_pid: int | None
    new_password: str | None = None  # set once, when `up` generated it

    def lines(self) -> list[str]:
        out = [f"prometheus: {self.url or 'not running'}" + (f" (user {USER})" if self.url else "")]
        out.append(f"exporter: {self.exporter_url or 'not running'}")
        if self.new_password:
            out.append(f"generated password for {USER} (saved 0600, shown once): {self.new_password}")
        return out


def monitor_dir(settings: Settings) -> Path:
    return settings.home / "monitor"


def _services(settings: Settings) -> tuple[Service, Service]:
    folder = monitor_dir(settings)
    return Service("prometheus", folder), Service("exporter", folder)


def _state_file(settings: Settings) -> Path:
    return monitor_dir(settings) / "state.yml"


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise MonitorError(f"{name} is not installed: run `apt-get install prometheus` (or `bash .ci/system-deps.sh`)")
    return found


def monitor_password(settings: Settings) -> tuple[str, bool]:
    configured = settings.monitor_password.get_secret_value() if settings.monitor_password else None
    return password(configured, monitor_dir(settings) / "prometheus-password")


def render_config(
    settings: Settings,
    target: Path,
    *,
    exporter: str,
    prometheus: str,
    scrape_interval: str | None = None,
    evaluation_interval: str | None = None,
) -> Path:
    """Copy `stack/prometheus` (config + rules) to `target` with native targets; returns prometheus.yml."""
    config: dict[str, Any] = yaml.safe_load((CONFIG_SOURCE / "prometheus.yml").read_text())
    if scrape_interval:
        config["global"]["scrape_interval"] = scrape_interval
    if evaluation_interval:
        config["global"]["evaluation_interval"] = evaluation_interval
    if target.exists():
        shutil.rmtree(target / "rules", ignore_errors=True)
    private_dir(target)
    shutil.copytree(CONFIG_SOURCE / "rules", target / "rules")
    targets = {"cascade": [exporter], "prometheus": [prometheus], "api": [], "nessie": [], "trino": []}
    if settings.api_metrics_target:
        targets["api"] = [settings.api_metrics_target]
    if settings.profile == Profile.stack:
        targets["nessie"] = [f"{urlsplit(settings.nessie_uri).hostname}:{NESSIE_MANAGEMENT_PORT}"]
        targets["trino"] = [f"{settings.trino_host}:{settings.trino_port}"]
    _trino_job(settings, config, target)
    (target / "targets").mkdir(exist_ok=True)
    for job, hosts in targets.items():
        (target / "targets" / f"{job}.yml").write_text(yaml.safe_dump([{"targets": hosts}] if hosts else []))
    secret, _ = monitor_password(settings)
    write_private(target / "secrets" / "prometheus-password", secret)
    hashed = bcrypt.hashpw(secret.encode(), bcrypt.gensalt(rounds=10)).decode()
    write_private(target / "web.yml", yaml.safe_dump({"basic_auth_users": {USER: hashed}}))
    path = target / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _trino_job(settings: Settings, config: dict[str, Any], target: Path) -> None:
    """The trino job as prometheus.yml has it (the stack's Trino: its password over HTTPS, its CA) with
    the files it names written under ``secrets/``; plain HTTP with the user name for a Trino without
    a password (or no Trino)."""
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "trino")
    job["basic_auth"]["username"] = settings.trino_user
    if settings.profile != Profile.stack or settings.trino_password is None:
        job["scheme"] = "http"
        job["basic_auth"] = {"username": settings.trino_user}
        job.pop("tls_config", None)
        return
    write_private(target / job["basic_auth"]["password_file"], settings.trino_password.get_secret_value())
    if settings.trino_ca is None:  # a Trino whose certificate the system trusts
        job.pop("tls_config", None)
    else:
        write_private(target / job["tls_config"]["ca_file"], Path(settings.trino_ca).read_text())


def status(settings: Settings | None = None) -> MonitorStatus:
    settings = settings or get_settings()
    prom, exp = _services(settings)
    state = _read_state(settings)
    prom_pid, exp_pid = prom.pid(), exp.pid()
    return MonitorStatus(
        running=prom_pid is not None and exp_pid is not None,
        url=state.get("url") if prom_pid else None,
        exporter_url=state.get("exporter_url") if exp_pid else None,
        prometheus_pid=prom_pid,
        exporter_pid=exp_pid,
    )


def _read_state(settings: Settings) -> dict[str, Any]:
    try:
        return dict(yaml.safe_load(_state_file(settings).read_text()) or {})
    except (OSError, yaml.YAMLError):
        return {}


def up(
    settings: Settings | None = None,
    *,
    scrape_interval: str | None = None,
    evaluation_interval: str | None = None,
) -> MonitorStatus:
    """Start the exporter and Prometheus (idempotent: running servers are kept)."""
    settings = settings or get_settings()
    current = status(settings)
    if current.running:
        return current
    prometheus_bin = _binary("prometheus")
    settings.ensure_home()
    folder = private_dir(monitor_dir(settings))
    _, generated = monitor_password(settings)
    down(settings)  # a half-running pair is restarted whole
    exporter_port = settings.exporter_port or free_port()
    prometheus_port = settings.prometheus_port or free_port()
    prom, exp = _services(settings)
    exp.start(
        [sys.executable, "-m", "workbench.monitor.exporter", "--port", str(exporter_port)],
        env=child_environment(settings),
    )
    exporter_url = f"http://{HOST}:{exporter_port}/metrics"
    wait_http(exporter_url, exp, START_TIMEOUT_S)
    config = render_config(
        settings,
        folder / "prometheus",
        exporter=f"{HOST}:{exporter_port}",
        prometheus=f"{HOST}:{prometheus_port}",
        scrape_interval=scrape_interval,
        evaluation_interval=evaluation_interval,
    )
    prom.start(
        [
            prometheus_bin,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address={HOST}:{prometheus_port}",
            f"--web.config.file={config.parent / 'web.yml'}",
            "--storage.tsdb.retention.time=30d",
        ],
        cwd=folder,
    )
    url = f"http://{HOST}:{prometheus_port}/"
    secret, _ = monitor_password(settings)
    wait_http(url + "-/ready", prom, START_TIMEOUT_S, auth=(USER, secret))
    write_private(_state_file(settings), yaml.safe_dump({"url": url, "exporter_url": exporter_url}))
    result = status(settings)
    return MonitorStatus(**{**result.__dict__, "new_password": secret if generated else None})


def down(settings: Settings | None = None) -> bool:
    """Stop Prometheus and the exporter; True if either was running."""
    settings = settings or get_settings()
    prom, exp = _services(settings)
    stopped = [prom.stop(), exp.stop()]
    _state_file(settings).unlink(missing_ok=True)
    return any(stopped)
