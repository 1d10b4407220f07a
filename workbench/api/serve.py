"""Serve the API app with uvicorn on 127.0.0.1 (a free port with `--port 0`), printing its URL."""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Callable

from workbench.api.errors import ApiError
from workbench.settings import Settings, get_settings

MAX_CONCURRENCY = 64


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free port)."""
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(info[0], socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[4])
        sock.listen(2048)
    except OSError as exc:
        raise ApiError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port") from None
    sock.set_inheritable(True)
    return sock


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    settings: Settings | None = None,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Run the app until interrupted. `announce(base_url)` is called once the socket listens."""
    import uvicorn

    from workbench.api.app import create_app

    settings = settings or get_settings()
    app = create_app(settings)
    sock = bind(host, port)
    bound = sock.getsockname()[1]
    display = f"[{host}]" if ":" in host else host
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("cascade.api").setLevel(logging.INFO)  # the access log: method, route, status, ms
    # Load shedding: beyond this many open requests/connections the server answers 503 at once
    # instead of queueing work whose clients have given up (which collapses throughput).
    config = uvicorn.Config(
        app,
        access_log=False,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=5,
        limit_concurrency=MAX_CONCURRENCY,
    )
    server = uvicorn.Server(config)
    if announce is not None:
        announce(f"http://{display}:{bound}/")
    server.run(sockets=[sock])
