"""The public HTTP API: predict, explain, models, feedback. Every route needs an API key."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request

from services.gateway.auth import Client, KeyStore
from services.gateway.feedback import store_feedback
from services.gateway.ratelimit import RateLimits
from services.gateway.reports import model_report, whole_hours
from services.gateway.series import Step, model_series
from services.gateway.service import PredictService
from services.gateway.windows import window
from shared.app import error_responses
from shared.contracts.explain import ExplainRequest, ExplainResponse
from shared.contracts.gateway import (
    FeedbackRequest,
    FeedbackResponse,
    PredictRequest,
    PredictResponse,
)
from shared.contracts.training import (
    AliasMove,
    ModelInfo,
    ModelInfoList,
    PromoteRequest,
    RollbackRequest,
)
from shared.errors import NotFound
from shared.registry import Registry
from shared.responses import JSONBytes

router = APIRouter(responses=error_responses(401, 403, 404, 409))
ANONYMOUS = Client("anonymous", frozenset({"predict", "admin"}))


def require(scope: str | None) -> Callable[..., Client]:
    """A dependency: the calling client if its key has ``scope`` (401/403 otherwise; any
    valid key when ``None``) and is
    within its rate limit and its address within the failed-authentication limit (429
    otherwise). Sync: FastAPI runs it in a worker thread, so the
    rare database lookup or Redis counter never blocks the event loop."""
    def dependency(request: Request,
                   authorization: Annotated[str | None, Header()] = None) -> Client:
        keys: KeyStore | None = request.app.state.keys
        if keys is None:
            return ANONYMOUS
        limits: RateLimits = request.app.state.limits
        address = request.client.host if request.client else "unknown"
        return limits.authenticate(keys, authorization, scope, address)
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


@router.post("/v1/models/{name}/predict", response_model=PredictResponse, tags=["predict"])
async def predict(name: str, body: PredictRequest, service: ServiceDep,
                  client: PredictClient) -> PredictResponse:
    """Classify one text or a list of texts with the production version of a model.

    ```
    curl -s localhost:8000/v1/models/intents/predict -H "Authorization: Bearer $KEY" \\
         -H 'content-type: application/json' -d '{"text": "where is my parcel"}'
    ```
    Each prediction has an ``inference_id``: send the true label to
    ``POST /v1/inferences/{id}/feedback`` and the trainer can retrain from it.

    ``"version": 3`` pins a version (``role`` ``pinned``; 404 naming the model's versions if
    it has no such one). While the model has a canary, callers in its share get the canary's
    answer (``role`` ``canary``, its ``version``), each caller always the same side: by
    ``routing_key`` if sent, else by the API key. A shadow never shows in the answer.
    """
    return await service.predict(name, body.all_texts(), body.top_k, client.name,
                                 body.version, body.routing_key)


@router.post("/v1/models/{name}/explain", response_model=ExplainResponse, tags=["predict"])
async def explain(name: str, body: ExplainRequest, service: ServiceDep,
                  client: PredictClient) -> ExplainResponse:
    """Why did it answer that? For one text: the label the production version ranks first
    (explained even when the model abstains), the runner-up, and for each word how much it
    moved that label's probability (leave-one-word-out).

    ```
    curl -s localhost:8000/v1/models/intents/explain -H "Authorization: Bearer $KEY" \\
         -H 'content-type: application/json' -d '{"text": "where is my parcel"}'
    ```
    The text and one variant per word are embedded in one embedder call, so an explanation
    costs one request of the key's rate limit. Errors are predict's (404 unknown model, 422
    empty or too long a text), plus 422 for more words than the classifier's
    ``CLASSIFIER_EXPLAIN_MAX_WORDS``. Explanations are not logged as inferences.
    """
    return await service.explain(name, body.text)


@router.get("/v1/models", response_model=ModelInfoList, tags=["models"])
def list_models(registry: RegistryDep, client: AnyClient) -> ModelInfoList:
    """Every model with its versions, metrics and which version is in production (any valid
    key: the console's Models page lists them for predict and admin keys alike).

    ```
    curl -s localhost:8000/v1/models -H "Authorization: Bearer $KEY"
    ```
    """
    return ModelInfoList(data=registry.list_models())


@router.get("/v1/models/{name}", response_model=ModelInfo, tags=["models"])
def get_model(name: str, registry: RegistryDep, client: AnyClient) -> ModelInfo:
    return registry.model(name)


@router.post("/v1/inferences/{inference_id}/feedback", response_model=FeedbackResponse,
             tags=["feedback"])
async def feedback(inference_id: str, body: FeedbackRequest, registry: RegistryDep,
                   client: PredictClient) -> FeedbackResponse:
    """Record the true label of an earlier prediction (ground truth for retraining).

    ```
    curl -s localhost:8000/v1/inferences/$ID/feedback -H "Authorization: Bearer $KEY" \\
         -H 'content-type: application/json' -d '{"label": "track_parcel"}'
    ```
    A prediction reaches the database a moment after its answer (the log is batched), so
    feedback sent right away waits up to ``FEEDBACK_WAIT_S`` for its row before a 404.
    A label the predicting version was not trained on answers 422 naming the ones it knows,
    unless the body says ``"new_label": true``. A later feedback replaces the label used for
    retraining and reports; every feedback is kept in ``inference_feedback``.
    """
    if not _INFERENCE_ID.fullmatch(inference_id):  # ids are uuid4 hex; nothing else exists
        raise NotFound(f"unknown inference {inference_id[:64]!r}", param="inference_id")
    deadline = time.monotonic() + FEEDBACK_WAIT_S
    while True:
        # The database down is a 503 (shared.errors); anything else a logged 500.
        stored = await anyio.to_thread.run_sync(lambda: store_feedback(
            registry.sessions, inference_id, body.label, client=client.name,
            new_label=body.new_label))
        if stored is not None:
            return stored
        if time.monotonic() >= deadline:
            raise NotFound(f"unknown inference {inference_id!r}", param="inference_id")
        await asyncio.sleep(0.1)


FEEDBACK_WAIT_S = 2.0
_INFERENCE_ID = re.compile(r"[0-9a-f]{32}")


@router.post("/v1/models/{name}/promote", response_model=AliasMove, tags=["admin"])
def promote(name: str, body: PromoteRequest, registry: RegistryDep,
            client: AdminClient) -> AliasMove:
    """Point ``production`` at a version (admin); classifiers serve it within seconds."""
    return registry.promote(name, body.version, actor=client.name, reason=body.reason)


@router.post("/v1/models/{name}/rollback", response_model=AliasMove, tags=["admin"])
def rollback(name: str, registry: RegistryDep, client: AdminClient,
             body: RollbackRequest | None = None) -> AliasMove:
    """Move ``production`` back to the previous version (admin)."""
    return registry.rollback(name, actor=client.name, reason=body.reason if body else "")


@router.get("/v1/reports/models/{name}", tags=["admin"])
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


@router.get("/v1/reports/models/{name}/series", tags=["admin"])
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
