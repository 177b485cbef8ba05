"""A model's report and its time series (admin scope), read from the hourly rollups."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from services.gateway.deps import AdminClient, RegistryDep
from services.gateway.reports import model_report, whole_hours
from services.gateway.series import Step, model_series
from services.gateway.time_windows import window
from shared.web.app import error_responses
from shared.web.responses import JSONBytes

router = APIRouter(tags=["admin"], responses=error_responses(401, 403, 404))


@router.get("/v1/reports/models/{name}")
def report(name: str, registry: RegistryDep, client: AdminClient,
           start: Annotated[datetime | None, Query(alias="from")] = None,
           end: Annotated[datetime | None, Query(alias="to")] = None) -> JSONBytes:
    """Volume, latency p50/p95/p99, label distribution, mean confidence, abstain rate,
    accuracy on feedback and label drift vs the training data (admin). Default: last 24 h.

    ```
    curl -s 'localhost:8000/v1/reports/models/intents?from=2026-11-01T00:00:00Z' \\
         -H "Authorization: Bearer $ADMIN_KEY"
    ```
    Reports read hourly rollups, so the window is whole hours: ``from`` is rounded down and
    ``to`` up to the hour (UTC), and the answer's ``from`` / ``to`` give the window actually
    used. Latency percentiles are estimates, interpolated within a latency histogram's
    buckets. Dates out of range (the default ``from`` is a day before ``to``) answer 422.
    """
    start, end = window(start, end, default=timedelta(days=1), rounded=whole_hours)
    return JSONBytes(model_report(registry.sessions, registry, name, start, end))


@router.get("/v1/reports/models/{name}/series")
def report_series(name: str, registry: RegistryDep, client: AdminClient,
                  start: Annotated[datetime | None, Query(alias="from")] = None,
                  end: Annotated[datetime | None, Query(alias="to")] = None,
                  step: Step | None = None,
                  version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None
                  ) -> JSONBytes:
    """The report's figures as time series, per hour or day and per version (admin): volume,
    abstain rate, mean confidence, cache-hit rate, latency p50/p95/p99, mean embed and head
    ms, feedback and accuracy on it, label drift (PSI). Default: the last 24 h, hourly.

    ```
    curl -s 'localhost:8000/v1/reports/models/intents/series?from=2026-11-01T00:00:00Z&step=day' \\
         -H "Authorization: Bearer $ADMIN_KEY"
    ```
    ``step`` is ``hour`` or ``day`` (UTC); without it, hours if the window has at most 400,
    else days. The window is whole buckets (the answer's ``from`` / ``to``), ``buckets``
    their starts, and every figure a list with one item per bucket (``null`` where a bucket
    has nothing to measure), under ``versions`` (each version with traffic, drift against its
    own training labels; ``version=`` for one) and ``all`` (drift against production's).
    Errors as the report's: 404 unknown model or version, 422 a bad window or more than 400
    buckets, 503 the database down.
    """
    start, end = window(start, end, default=timedelta(days=1), rounded=whole_hours)
    return JSONBytes(model_series(registry.sessions, registry, name, start, end, step, version))
