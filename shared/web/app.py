"""The FastAPI skeleton every service starts from: errors, request ids, limits, metrics, health.

A service's ``create_app`` calls :func:`build_app` with its lifespan and routers, so the
cross-cutting behaviour is written once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from shared.contracts.errors import ErrorResponse
from shared.contracts.health import Health, Readiness
from shared.metrics import exposition
from shared.web.api_docs import install_api_docs
from shared.web.errors import install_error_handlers
from shared.web.middleware import BodySizeLimit, RefuseNul, RequestMetrics, request_id_middleware
from shared.web.responses import JSONBytes

ReadinessCheck = Callable[[Request], Readiness]

_ERRORS = {401: "Missing, unknown or revoked API key", 403: "The key lacks the needed scope",
           404: "Unknown model, version, job or inference", 409: "Clashes with the current state",
           413: "Body too large", 422: "Invalid input",
           429: "Overloaded or over the key's rate limit: retry after the Retry-After header",
           500: "Internal error (logged with the request id)",
           503: "Not ready, or a dependency is down"}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses (all share the error body)."""
    return {code: {"model": ErrorResponse, "description": _ERRORS[code]} for code in codes}


# Every route of every service may answer these.
ERROR_RESPONSES = error_responses(413, 422, 429, 500, 503)


def build_app(*, service: str, title: str, description: str, version: str,
              lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
              routers: Sequence[APIRouter], readiness: ReadinessCheck,
              max_body_bytes: int, body_limits: dict[str, int] | None = None,
              docs: bool = True) -> FastAPI:
    """``docs=False`` serves no /docs, /redoc or /openapi.json (the gateway in production)."""
    app = FastAPI(title=title, description=description, version=version, lifespan=lifespan,
                  responses=ERROR_RESPONSES, docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json" if docs else None)
    install_api_docs(app, serve=docs)  # Swagger UI from local files, the bearer scheme
    install_error_handlers(app)
    app.include_router(_ops_router(readiness))
    for router in routers:
        app.include_router(router)
    # Outermost last: the request id exists before metrics and limits run.
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes, overrides=body_limits)
    app.add_middleware(RefuseNul)
    app.add_middleware(RequestMetrics, service=service)
    app.add_middleware(request_id_middleware)
    return app


def _ops_router(readiness: ReadinessCheck) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/health", response_model=Health)
    async def health() -> Health:
        """Liveness: the process answers. ``curl -s localhost:8001/health``"""
        return Health()

    @router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
    async def ready(request: Request) -> JSONBytes:
        """Readiness: 200 once the service can do its work, else 503 with the failing check."""
        # In a worker thread: a check may query a database or Redis (the trainer's does), and a
        # slow dependency must not stall the event loop that serves everything else.
        state = await anyio.to_thread.run_sync(readiness, request)
        return JSONBytes(state.model_dump(), status_code=200 if state.status == "ready" else 503)

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus exposition format."""
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    return router
