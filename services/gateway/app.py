"""The gateway's app factory: ``create_app(settings=None)``.

Start-up: migrate the database, start the inference log (it also ships what a previous run
left on disk), learn which classifier serves which model, and keep that fresh. Shutdown ships
what it can of the inference log and leaves the rest on disk for the next start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
from fastapi import FastAPI, Request
from sqlalchemy import Engine
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

import shared
from services.gateway.auth import KeyStore
from services.gateway.console import router as console_router
from services.gateway.inference_log import InferenceLog, SqlSink
from services.gateway.outliers import OutlierDetector
from services.gateway.ratelimit import RateLimits
from services.gateway.replicas import Replicas
from services.gateway.rollout_watch import RolloutWatch
from services.gateway.routes import (
    candidates,
    feedback,
    me,
    models,
    predict,
    reports,
    review,
    training,
)
from services.gateway.service import PredictService
from shared.contracts.health import Readiness
from shared.db import make_engine, partitions, session_factory
from shared.db.migrate import upgrade
from shared.logs import configure_logging
from shared.registry import Registry
from shared.settings import GatewaySettings
from shared.web.app import build_app

log = logging.getLogger(__name__)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    configure_logging("gateway", settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        try:
            await anyio.to_thread.run_sync(upgrade, engine)
        except Exception:  # the database may be down: serve; the log waits on disk
            log.warning("could not migrate the database at start-up; serving anyway",
                        exc_info=True)
        sessions = session_factory(engine)
        app.state.registry = Registry(sessions)
        app.state.keys = KeyStore(sessions) if settings.auth else None
        app.state.limits = RateLimits(settings.rate_limit, settings.redis_url,
                                      auth_failures=settings.auth_failure_limit)
        inference_log = inference_log_for(settings, engine) if settings.log_inferences else None
        if inference_log is not None:
            inference_log.start()
        http = httpx.AsyncClient(timeout=httpx.Timeout(settings.timeout_s, connect=2.0),
                                 limits=httpx.Limits(max_connections=256,
                                                     max_keepalive_connections=64))
        outliers = OutlierDetector(ejection_s=settings.ejection_s,
                                   max_ejection_s=settings.max_ejection_s,
                                   eject_after_5xx=settings.eject_after_5xx)
        replicas = Replicas(settings.classifiers(), http, outliers,
                            discover=settings.discover_classifiers)
        app.state.replicas, app.state.inference_log = replicas, inference_log
        app.state.http, app.state.settings = http, settings
        app.state.service = PredictService(settings, replicas, http, inference_log)
        await replicas.refresh()
        try:
            # An anyio task group, not asyncio.create_task: cancelling it waits for a rollout
            # check running in a thread, so no connection goes back to the pool after dispose().
            async with anyio.create_task_group() as background:
                background.start_soon(_refresh, replicas, settings.routes_refresh_s)
                if settings.rollout_check_s:
                    watch = RolloutWatch(app.state.registry, settings.rollout_window_s,
                                         settings.log_retention_days)
                    background.start_soon(_watch_rollouts, watch, settings.rollout_check_s)
                try:
                    yield
                finally:
                    background.cancel_scope.cancel()
        finally:
            await http.aclose()
            if inference_log is not None:
                await anyio.to_thread.run_sync(inference_log.stop)
            engine.dispose()

    app = build_app(service="gateway", title="polyhead", version=shared.__version__,
                    description="The public API: predictions from every classifier head, "
                                "each one logged; feedback for retraining.",
                    lifespan=lifespan,
                    routers=[predict.router, models.router, feedback.router, reports.router,
                             training.router, candidates.router, review.router, me.router,
                             *([console_router] if settings.console else [])],
                    readiness=_readiness,
                    max_body_bytes=settings.max_body_bytes,
                    body_limits={"/v1/jobs": settings.max_upload_bytes},
                    docs=settings.public_docs())
    # Outermost: behind the trusted proxies, the caller's own address is the client's (the
    # failed-authentication limit counts per address); anyone else's forwarded headers are
    # ignored. The servers themselves trust none (shared/gunicorn.py, shared/devserver.py).
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    return app


def inference_log_for(settings: GatewaySettings, engine: Engine) -> InferenceLog:
    """The write-ahead log and its shipper as ``settings`` configure them (not started)."""
    def maintain() -> object:
        return partitions.maintain(engine, retention_days=settings.log_retention_days)

    return InferenceLog(SqlSink(engine), Path(settings.log_dir), batch=settings.log_batch,
                        ship_every_s=settings.log_ship_s, retry_s=settings.log_retry_s,
                        fsync_ms=settings.log_fsync_ms,
                        segment_bytes=settings.log_segment_bytes,
                        direct_max_bytes=settings.log_direct_max_bytes,
                        drain_s=settings.log_drain_s,
                        required=settings.log_required, maintain=maintain)


async def _refresh(replicas: Replicas, period_s: float) -> None:
    while True:
        await asyncio.sleep(period_s)
        await replicas.refresh()


async def _watch_rollouts(watch: RolloutWatch, period_s: float) -> None:
    while True:
        await asyncio.sleep(period_s)
        try:
            await anyio.to_thread.run_sync(watch.run_once)
        except Exception:  # the database may be down: try again next period
            log.warning("the rollout watcher could not run", exc_info=True)


def _readiness(request: Request) -> Readiness:
    """Whether this gateway can serve: started (routes asked for once). Never whether the
    classifiers or the database are up: every gateway would turn unready at once, for every
    model, and the load balancer would have none left. The checks say how they are."""
    replicas: Replicas | None = getattr(request.app.state, "replicas", None)
    if replicas is None or not replicas.refreshed:
        return Readiness(status="not_ready", checks={"classifiers": "not asked yet"})
    checks = {"classifiers": f"{len(replicas.urls)} found, {len(replicas.ejected())} ejected",
              "models": str(len(replicas.models()))}
    inference_log: InferenceLog | None = request.app.state.inference_log
    if inference_log is not None:
        checks["inference_log"] = inference_log.state()
    return Readiness(status="ready", checks=checks)
