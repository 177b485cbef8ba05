"""Prometheus helpers: the request-latency histogram (observed by
:class:`shared.web.middleware.RequestMetrics`), the ``/metrics`` exposition, collectors computed at
scrape time, and the embedder client's circuit-breaker gauge.

Metrics are module-level objects (prometheus-client's model). Under gunicorn with several
workers, set ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` aggregates all workers.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30)

HTTP_LATENCY = Histogram(
    "polyhead_http_request_duration_seconds", "HTTP request latency by route and status.",
    ["service", "method", "route", "status"], buckets=LATENCY_BUCKETS)


BREAKER_STATES = {"closed": 0, "half-opened": 1, "opened": 2}
EMBEDDER_BREAKER = Gauge(
    "polyhead_embedder_breaker_state", "The embedder client's circuit breaker in this process: "
    "0 closed, 1 half-open (one trial call), 2 open (failing fast).", multiprocess_mode="livemax")

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


def exposition() -> bytes:
    """Every metric in Prometheus's text format (``CONTENT_TYPE_LATEST``): this process's, or
    all workers' under ``PROMETHEUS_MULTIPROC_DIR``."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # unannotated upstream
        for collector in _EXTRA:
            registry.register(collector)
        return generate_latest(registry)
    return generate_latest()
