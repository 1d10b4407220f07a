"""The metrics endpoint: a small standalone exporter (`cascade monitor exporter`), and the same
metrics as an ASGI app the API mounts at `/metrics`.

Why a standalone exporter: the embedded profile runs no API server, and the pipeline's health must
stay visible when the API is down (the API being down is itself an alert). The API mounts the
same registry, so a deployment that runs the API may scrape either; both read the lake read-only.
"""

from __future__ import annotations

import threading
from typing import Any
from wsgiref.simple_server import WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_asgi_app, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

from workbench.monitor.api_metrics import COLLECTORS
from workbench.monitor.collector import PipelineCollector
from workbench.settings import Settings

HOST = "127.0.0.1"


def build_registry(settings: Settings | None = None, *, api: bool = False) -> CollectorRegistry:
    """A registry with the pipeline collector (and the API's request metrics when `api`)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineCollector(settings))
    if api:
        for collector in COLLECTORS:
            registry.register(collector)
    return registry


def metrics_app(settings: Settings | None = None) -> Any:
    """ASGI app serving the pipeline and API metrics (mount it at `/metrics` in the API)."""
    return make_asgi_app(build_registry(settings, api=True))


def start_exporter(port: int = 0, settings: Settings | None = None, host: str = HOST) -> tuple[WSGIServer, int]:
    """Serve `/metrics` on host:port in a daemon thread; returns the server and the bound port."""
    app = make_wsgi_app(build_registry(settings))
    server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_SilentHandler)
    thread = threading.Thread(target=server.serve_forever, name="cascade-exporter", daemon=True)
    thread.start()
    return server, int(server.server_port)


def main(argv: list[str] | None = None) -> None:
    """`python -m workbench.monitor.exporter --port N`: serve until SIGTERM (what `monitor up` starts)."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(description="Cascade pipeline metrics exporter")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default=HOST)
    args = parser.parse_args(argv)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})  # sigwait below takes them
    server, port = start_exporter(args.port, host=args.host)
    print(f"exporter: http://{args.host}:{port}/metrics", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    server.shutdown()


if __name__ == "__main__":  # pragma: no cover
    main()
