"""The API's request metrics: one definition, used by the API (workbench/api) and the alert rules.

```python
from workbench.monitor.api_metrics import PrometheusMiddleware
from workbench.monitor.exporter import metrics_app
app.add_middleware(PrometheusMiddleware)
app.mount("/metrics", metrics_app())
```
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Histogram

# Buckets up to 10 s: the p99 latency alert's threshold (1 s) falls between two of them.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "cascade_api_requests",
    "HTTP requests served by the Cascade API, by method, route template and status code",
    ["method", "route", "status"],
    registry=None,
)
LATENCY = Histogram(
    "cascade_api_request_duration_seconds",
    "Time the Cascade API took to answer, by route template",
    ["route"],
    buckets=LATENCY_BUCKETS,
    registry=None,
)
COLLECTORS = (REQUESTS, LATENCY)


def observe(method: str, route: str, status: int, seconds: float) -> None:
    """Record one answered request (`route` is the template, e.g. `/patients/{patient_id}`)."""
    REQUESTS.labels(method=method, route=route, status=str(status)).inc()
    LATENCY.labels(route=route).observe(seconds)


class PrometheusMiddleware:
    """ASGI middleware counting every HTTP request; the route template keeps label cardinality low.
    An exception escaping the app counts as a 500."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            if not template.startswith("/metrics"):
                observe(scope.get("method", "GET"), template, status["code"], time.perf_counter() - started)
