"""Prometheus metrics and the access log of the API (one registry per app).

Metrics: `cascade_api_requests_total{method,route,status}`, `cascade_api_request_seconds{route}`
(histogram), `cascade_api_errors_total{route,kind}` (kind = client for 4xx, server for 5xx) and,
computed at scrape time from the published data, `cascade_patient_data_age_seconds{patient}`.
The access log names method, route, status and milliseconds: never a query string (a hub login URL
carries a token) and never a header.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("cascade.api")
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class FreshnessCollector:
    """Seconds since each patient's newest published reading: the `/metrics` endpoint reads the
    newest readings (asynchronously) and hands them over right before it renders the registry."""

    def __init__(self) -> None:
        self.newest: dict[str, datetime | None] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "cascade_patient_data_age_seconds",
            "Seconds since the newest published reading of each patient",
            labels=["patient"],
        )
        now = datetime.now(UTC)
        for patient, at in sorted(self.newest.items()):
            if at is not None:
                family.add_metric([patient], (now - at).total_seconds())
        yield family


class ApiMetrics:
    """The app's registry and its request metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cascade_api_requests_total", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "cascade_api_request_seconds", "Request latency", ["route"], buckets=BUCKETS, registry=self.registry
        )
        self.errors = Counter(
            "cascade_api_errors_total", "Requests answered with an error", ["route", "kind"], registry=self.registry
        )
        self.freshness = FreshnessCollector()
        self.registry.register(self.freshness)  # type: ignore[arg-type]

    def scrape(self, newest: dict[str, datetime | None]) -> CollectorRegistry:
        """The registry to render, with the freshness of `newest` (rendered synchronously right
        after this call, so concurrent scrapes on the event loop cannot interleave)."""
        self.freshness.newest = newest
        return self.registry

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """A plain ASGI middleware (cheaper than Starlette's BaseHTTPMiddleware on every request)."""

        async def observe(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            status = 500

            async def send_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                await send(message)

            try:
                await app(scope, receive, send_status)
            finally:
                elapsed = time.perf_counter() - started
                route = _route_of(scope)
                self.requests.labels(scope["method"], route, str(status)).inc()
                self.latency.labels(route).observe(elapsed)
                if status >= 400:
                    self.errors.labels(route, "server" if status >= 500 else "client").inc()
                log.info("%s %s %d %.1fms", scope["method"], route, status, elapsed * 1000)

        return observe


def _route_of(scope: Scope) -> str:
    """The route template (`/runs/{run_id}`), not the concrete path: bounded label values."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"
