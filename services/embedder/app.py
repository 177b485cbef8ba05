"""The embedder's app factory: ``create_app(settings=None)``.

The model loads in the background after start-up, so ``/health`` answers at once and
``/ready`` turns 200 when the model is loaded (503 with the reason until then).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

import shared
from services.embedder.backends import Backend, load_backend
from services.embedder.cache import PhraseCache, RedisTier
from services.embedder.engine import BatchingEngine
from services.embedder.router import router
from services.embedder.service import EmbeddingService
from shared.contracts.health import Readiness
from shared.logs import configure_logging
from shared.settings import EmbedderSettings
from shared.web.app import build_app

log = logging.getLogger(__name__)


def create_app(settings: EmbedderSettings | None = None, backend: Backend | None = None
               ) -> FastAPI:
    """``backend``: an already-loaded model to use (tests share one); else loaded from settings."""
    settings = settings or EmbedderSettings()
    configure_logging("embedder", settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.service = None
        app.state.load_failed = False
        loading = asyncio.create_task(_start(app, settings, backend))
        try:
            yield
        finally:
            await asyncio.gather(loading, return_exceptions=True)
            service: EmbeddingService | None = app.state.service
            if service is not None:
                await asyncio.to_thread(service.engine.stop)
                if service.cache.redis is not None:
                    await service.cache.redis.close()

    return build_app(service="embedder", title="polyhead embedder", version=shared.__version__,
                     description="One sentence-embedding model for every classifier head: "
                                 "micro-batched, cached, OpenAI-compatible.",
                     lifespan=lifespan, routers=[router], readiness=_readiness,
                     max_body_bytes=settings.max_body_bytes)


async def _start(app: FastAPI, settings: EmbedderSettings, backend: Backend | None) -> None:
    try:
        model = backend if backend is not None else await asyncio.to_thread(load_backend,
                                                                            settings)
        app.state.service = build_service(settings, model)
    except Exception as exc:
        # The reason (a path, a CUDA error...) goes to the log only: /ready is public.
        app.state.load_failed = True
        log.critical("embedder failed to start", exc_info=exc)


def build_service(settings: EmbedderSettings, model: Backend) -> EmbeddingService:
    """The batching engine (started) and the phrase cache around a loaded ``model``."""
    # torch + transformers leave ~400k long-lived objects; without this, full collections
    # scan them every few seconds under load (300-400 ms pauses measured, p99 x8).
    gc.collect()
    gc.freeze()
    engine = BatchingEngine(model, settings)
    engine.start()
    redis = None
    if settings.redis_url:
        timeout = settings.redis_timeout_ms / 1000
        client = Redis.from_url(settings.redis_url.get_secret_value(), socket_timeout=timeout,
                                socket_connect_timeout=timeout,
                                # the asyncio Retry: redis-py 8.2 warns on the sync one
                                retry=Retry(NoBackoff(), 0))
        redis = RedisTier(client, model.info.identity, model.info.feature_dimension, settings)
    cache = PhraseCache(settings.lru_size, redis)
    log.info("embedder ready", extra={"model": model.info.model_id,
                                      "identity": model.info.identity,
                                      "concurrent_batches": engine.concurrent_batches,
                                      "redis": bool(settings.redis_url),
                                      "lru_size": settings.lru_size})
    return EmbeddingService(engine, cache, settings)


def _readiness(request: Request) -> Readiness:
    state = request.app.state
    service: EmbeddingService | None = getattr(state, "service", None)
    if service is None:
        failed = getattr(state, "load_failed", False)
        return Readiness(status="not_ready", checks={
            "model": "failed to load; see the service logs" if failed else "loading"})
    redis = service.cache.redis
    redis_state = "disabled" if redis is None else ("ok" if redis.healthy else "unavailable")
    return Readiness(status="ready", checks={"model": "loaded", "redis": redis_state})
