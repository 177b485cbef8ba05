"""Prometheus helpers: the request-latency middleware (with the optional access log), the
``/metrics`` answer, and the embedder client's circuit-breaker gauge.

Metrics are module-level objects (prometheus-client's model). Under gunicorn with several
workers, set ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` aggregates all workers.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.settings import ServiceSettings

LATENCY_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30)

HTTP_LATENCY = Histogram(
    "polyhead_http_request_duration_seconds", "HTTP request latency by route and status.",
    ["service", "method", "route", "status"], buckets=LATENCY_BUCKETS)


BREAKER_STATES = {"closed": 0, "half-opened": 1, "opened": 2}
EMBEDDER_BREAKER = Gauge(
    "polyhead_embedder_breaker_state", "The embedder client's circuit breaker in this process: "
    "0 closed, 1 half-open (one trial call), 2 open (failing fast).", multiprocess_mode="livemax")

access_log = logging.getLogger("polyhead.access")

_EXTRA: list[Collector] = []


def record_breaker_state(circuit: str, event_type: str, event: Any) -> None:
    """A purgatory listener (``factory.add_listener``): the breaker's state into the gauge."""
    if event_type == "state_changed":
        EMBEDDER_BREAKER.set(BREAKER_STATES.get(event.state, 0))


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
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # unannotated upstream
        for collector in _EXTRA:
            registry.register(collector)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class RequestMetrics:
    """Pure ASGI (no BaseHTTPMiddleware overhead): time every request, label by route template.

    With ``access_log`` (default: the ``ACCESS_LOG`` setting, off), also log one line per
    request on the ``polyhead.access`` logger; the request id is on it like on every line."""

    def __init__(self, app: ASGIApp, service: str, access_log: bool | None = None) -> None:
        self.app = app
        self.service = service
        self.access_log = ServiceSettings().access_log if access_log is None else access_log

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
            seconds = time.perf_counter() - start
            HTTP_LATENCY.labels(self.service, scope["method"], path, str(status)).observe(seconds)
            if self.access_log:
                client = scope.get("client")
                # The path as a repr: a decoded %0A cannot forge a second log line.
                access_log.info("%s %s %r %d %.1f ms", client[0] if client else "-",
                                scope["method"], scope["path"], status, seconds * 1000)
