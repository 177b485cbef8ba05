"""The gateway's FastAPI dependencies: the calling client (by API key, scope and limits) and
the app's service and registry, as ``Annotated`` aliases the route modules share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import anyio
from fastapi import Depends, Request

from services.gateway.auth import Client, KeyStore
from services.gateway.ratelimit import RateLimits
from services.gateway.service import PredictService
from shared.registry import Registry

ANONYMOUS = Client("anonymous", frozenset({"predict", "admin"}))


def require(scope: str | None) -> Callable[..., Awaitable[Client]]:
    """A dependency: the calling client if its key has ``scope`` (401/403 otherwise; any
    valid key when ``None``) and is within its rate limit and its address within the
    failed-authentication limit (429 otherwise). A key known from the last ``ttl_s`` whose
    counting needs no I/O is answered on the event loop; anything else (a database lookup, a
    Redis counter) runs in a worker thread, so it never blocks the loop."""
    async def dependency(request: Request) -> Client:
        # Read here, not as a Header() parameter: FastAPI re-inspects a parameter's type on
        # every request, and the OpenAPI documents the bearer scheme (shared/web/api_docs.py).
        keys: KeyStore | None = request.app.state.keys
        if keys is None:
            return ANONYMOUS
        authorization = request.headers.get("authorization")
        limits: RateLimits = request.app.state.limits
        known = keys.known(authorization, scope)
        if known is not None and limits.counts_in_memory(known):
            limits.check(known)
            return known
        address = request.client.host if request.client else "unknown"
        return await anyio.to_thread.run_sync(limits.authenticate, keys, authorization, scope,
                                              address)
    return dependency


PredictClient = Annotated[Client, Depends(require("predict"))]
AdminClient = Annotated[Client, Depends(require("admin"))]
# Reading models needs any valid key: predict to use them, admin to manage them.
AnyClient = Annotated[Client, Depends(require(None))]


async def get_service(request: Request) -> PredictService:
    """``async``: FastAPI would run a plain ``def`` in a worker thread, a hop per request."""
    service: PredictService = request.app.state.service
    return service


async def get_registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


ServiceDep = Annotated[PredictService, Depends(get_service)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
