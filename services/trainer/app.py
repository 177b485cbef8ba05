"""The trainer's app factory: ``create_app(settings=None)``.

Start-up migrates the database, opens the artifact store and the queue. In the embedded
default (no Redis) a worker thread runs the jobs in this process, and jobs a previous run left
unfinished are sent again. A reaper returns jobs whose worker went silent to the queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import redis
from fastapi import FastAPI, Request
from sqlalchemy import text

import shared
from services.trainer.metrics import JobCollector
from services.trainer.pipeline import Runtime
from services.trainer.queue import declare, in_process_worker, make_broker
from services.trainer.router import router
from services.trainer.runtime import build_runtime
from shared.clients.embedder import EmbedderClient
from shared.contracts.health import Readiness
from shared.logs import configure_logging
from shared.metrics import add_collector, remove_collector
from shared.settings import TrainerSettings
from shared.web.app import build_app

log = logging.getLogger(__name__)


def create_app(settings: TrainerSettings | None = None,
               embedder: EmbedderClient | None = None) -> FastAPI:
    """``embedder``: a client to use instead of one built from ``EMBEDDER_URL`` (tests)."""
    settings = settings or TrainerSettings()
    configure_logging("trainer", settings.log_level, settings.log_json)
    run_worker = settings.run_worker if settings.run_worker is not None else not settings.queue_url

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await anyio.to_thread.run_sync(build_runtime, settings, embedder)
        broker = make_broker(settings)
        app.state.runtime, app.state.broker = runtime, broker
        # Readiness pings the queue with a short timeout of its own (never hangs /ready).
        app.state.queue_probe = redis.Redis.from_url(
            settings.queue_url.get_secret_value(), socket_timeout=1, socket_connect_timeout=1
        ) if settings.queue_url else None
        app.state.actor = declare(broker, runtime, settings)
        worker = in_process_worker(broker) if run_worker else None
        if worker is not None:
            worker.start()
            if not settings.queue_url:  # the in-memory queue forgot them: send them again
                for job_id in await anyio.to_thread.run_sync(runtime.jobs.unfinished):
                    app.state.actor.send(job_id)
        collector = JobCollector(runtime.jobs)
        add_collector(collector)
        try:
            # An anyio task group, not asyncio.create_task: cancelling it waits for a check
            # running in a thread, so no connection goes back to the pool after it is closed.
            async with anyio.create_task_group() as background:
                background.start_soon(_reap, runtime)
                try:
                    yield
                finally:
                    background.cancel_scope.cancel()
        finally:
            remove_collector(collector)
            if worker is not None:
                await anyio.to_thread.run_sync(worker.stop)
            broker.close()
            if app.state.queue_probe is not None:
                app.state.queue_probe.close()
            runtime.close()

    app = build_app(service="trainer", title="polyhead trainer", version=shared.__version__,
                    description="From a CSV of text,label to a versioned, evaluated classifier "
                                "head; the model registry (promote, roll back). Routes that "
                                "change state need the internal token when one is set.",
                    lifespan=lifespan, routers=[router], readiness=_readiness,
                    max_body_bytes=settings.max_upload_bytes + 64 * 1024)
    app.state.internal_token = settings.internal_token  # shared.internal_auth checks it
    return app


async def _reap(runtime: Runtime) -> None:
    period = min(runtime.settings.stale_after_s / 2, 10.0)
    while True:
        await asyncio.sleep(period)
        try:
            lost = await anyio.to_thread.run_sync(runtime.jobs.reap_stale,
                                                  runtime.settings.stale_after_s)
            for job_id in lost:
                log.warning("job %s lost its worker; back to queued for a retry", job_id)
        except Exception:  # the database may be down; try next period
            log.warning("reaper: could not check for stale jobs", exc_info=True)


def _readiness(request: Request) -> Readiness:
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    if runtime is None:
        return Readiness(status="not_ready", checks={"database": "starting"})
    checks = {}
    try:
        with runtime.registry.sessions() as s:
            s.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - readiness names the failure; never raises
        checks["database"] = f"down: {type(exc).__name__}"
    client: redis.Redis | None = request.app.state.queue_probe
    if client is not None:
        try:
            client.ping()
            checks["queue"] = "ok"
        except Exception as exc:  # noqa: BLE001 - readiness names the failure; never raises
            checks["queue"] = f"down: {type(exc).__name__}"
    # Ready whatever the checks say: a trainer can take no job while the database is down, but
    # neither can another one; unready pods would only turn the outage into "no trainer".
    return Readiness(status="ready", checks=checks)
