"""Prometheus helpers: the request-latency middleware and the ``/metrics`` answer.

Metrics are module-level objects (prometheus-client's model). Under gunicorn with several
workers, set ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` aggregates all workers.
"""

from __future__ import annotations

import os
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30)

HTTP_LATENCY = Histogram(
    "polyhead_http_request_duration_seconds", "HTTP request latency by route and status.",
    ["service", "method", "route", "status"], buckets=LATENCY_BUCKETS)


_EXTRA: list[Collector] = []


def add_collector(collector: Collector) -> None:
    """A collector computed at scrape time (e.g. from the database), in every process mode."""
    _EXTRA.append(collector)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        REGISTRY.register(collector)


def remove_collector(collector: Collector) -> None:
    if collector in _EXTRA:
        _EXTRA.remove(collector)
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            REGISTRY.unregister(collector)


def metrics_response() -> Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        for collector in _EXTRA:
            registry.register(collector)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class RequestMetrics:
    """Pure ASGI (no BaseHTTPMiddleware overhead): time every request, label by route template."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            HTTP_LATENCY.labels(self.service, scope["method"], path, str(status)).observe(
                time.perf_counter() - start)
