"""The classifier's app factory: ``create_app(settings=None)``.

Start-up loads the production heads; a background task re-reads the registry every
``reload_interval_s`` and swaps in promoted or rolled-back versions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, Request

import shared
from services.classifier.head_set import HeadSet
from services.classifier.metrics import record_loaded
from services.classifier.router import router
from services.classifier.service import ClassifierService
from shared.artifacts import ArtifactStore
from shared.clients.embedder import AsyncEmbedderClient
from shared.contracts.health import Readiness
from shared.db import make_engine, session_factory
from shared.db.migrate import upgrade
from shared.logs import configure_logging
from shared.registry import Registry
from shared.settings import ClassifierSettings
from shared.web.app import build_app

log = logging.getLogger(__name__)


def create_app(settings: ClassifierSettings | None = None,
               embedder: AsyncEmbedderClient | None = None) -> FastAPI:
    settings = settings or ClassifierSettings()
    configure_logging("classifier", settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        await anyio.to_thread.run_sync(upgrade, engine)
        heads = HeadSet(Registry(session_factory(engine)), ArtifactStore(settings.artifact_store),
                        settings.model_names(), settings.pinned_heads)
        client = embedder or AsyncEmbedderClient()
        app.state.service = ClassifierService(heads, client, settings)
        try:
            # An anyio task group, not asyncio.create_task: cancelling it waits for a registry
            # read running in a thread, so no connection goes back to the pool after dispose().
            async with anyio.create_task_group() as background:
                background.start_soon(_watch, heads, settings.reload_interval_s)
                try:
                    yield
                finally:
                    background.cancel_scope.cancel()
        finally:
            await client.aclose()
            engine.dispose()

    return build_app(service="classifier", title="polyhead classifier",
                     version=shared.__version__,
                     description="Light classifier heads over the central embedder; serves the "
                                 "production version of each model, hot-reloaded.",
                     lifespan=lifespan, routers=[router], readiness=_readiness,
                     max_body_bytes=settings.max_body_bytes)


async def _watch(heads: HeadSet, interval_s: float) -> None:
    while True:
        try:
            for change in await anyio.to_thread.run_sync(heads.refresh):
                log.info("now serving %s", change)
            record_loaded({served.model: served.version for served in heads.all()})
        except Exception:
            log.warning("could not read the registry; serving the loaded heads", exc_info=True)
        await asyncio.sleep(interval_s)


def _readiness(request: Request) -> Readiness:
    service: ClassifierService | None = getattr(request.app.state, "service", None)
    if service is None or not service.heads.refreshed:
        return Readiness(status="not_ready", checks={"registry": "not read yet"})
    # A candidate that failed to load is reported, not fatal: production answers alone.
    failed = ", ".join(f"{model} {version}" for model, version
                       in sorted(service.heads.failures.items()))
    return Readiness(status="ready", checks={
        "registry": "ok", "heads": str(len(service.heads.all())),
        "candidates": f"failed to load: {failed}" if failed else "ok"})
