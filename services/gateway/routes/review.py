"""The review queue's routes (admin scope): the clustered queue, and labelling from it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import anyio
from fastapi import APIRouter, Query

from services.gateway import review
from services.gateway.deps import AdminClient, RegistryDep, ServiceDep
from shared.contracts.review import (
    MAX_REVIEW_TEXTS,
    ReviewLabelRequest,
    ReviewLabelResponse,
    ReviewResponse,
)
from shared.web.app import error_responses

router = APIRouter(tags=["admin"], responses=error_responses(401, 403, 404))


@router.get("/v1/models/{name}/review", response_model=ReviewResponse)
async def review_queue(
        name: str, registry: RegistryDep, service: ServiceDep, client: AdminClient,
        start: Annotated[datetime | None, Query(alias="from")] = None,
        end: Annotated[datetime | None, Query(alias="to")] = None,
        max_confidence: Annotated[float, Query(ge=0, le=1)] = review.DEFAULT_MAX_CONFIDENCE,
        limit: Annotated[int, Query(ge=1, le=MAX_REVIEW_TEXTS)] = 500) -> ReviewResponse:
    """What the model was unsure of, grouped into candidate new intents (admin): the
    inferences of the window (default the last 7 days) that abstained or answered with a top
    probability under ``max_confidence`` (default 0.7), answered to callers (not a shadow's)
    and without feedback yet, newest first, as at most ``limit`` distinct texts, each with the
    ids of all its inferences. A classifier replica sets apart the texts nearer a known
    label's examples than to the other texts (``near_known``: corrections, not new intents)
    and clusters the rest by meaning in the production version's intent map: each cluster has
    its distinctive words, a proposed name and the version's nearest label (cosine to its
    prototypes).

    ```
    curl -s 'localhost:8000/v1/models/intents/review?max_confidence=0.7&limit=500' \\
         -H "Authorization: Bearer $ADMIN_KEY"
    ```
    Only the newest ``scan_limit`` inferences of the window are read (``scanned`` says how
    many were). An empty queue answers 200 with no clusters. 404 unknown model, 422 a window
    that is empty or a limit out of range, 503 when no classifier replica can cluster.
    """
    return await review.review(registry, service, name, start, end, max_confidence, limit)


@router.post("/v1/models/{name}/review/labels", response_model=ReviewLabelResponse)
async def label_review(name: str, body: ReviewLabelRequest, registry: RegistryDep,
                       client: AdminClient) -> ReviewLabelResponse:
    """Label inferences from the review queue (admin): the label is stored as feedback on
    each (as ``POST /v1/inferences/{id}/feedback`` does), for retraining with
    ``POST /v1/jobs/feedback``.

    ```
    curl -s localhost:8000/v1/models/intents/review/labels \\
         -H "Authorization: Bearer $ADMIN_KEY" -H 'content-type: application/json' \\
         -d '{"inference_ids": ["'$ID'"], "label": "book_restaurant", "new_label": true}'
    ```
    Ids of no inference of this model come back in ``not_found``. A label a predicting
    version was not trained on answers 422 naming the ones it knows, and labels nothing,
    unless ``"new_label": true``. 404 unknown model.
    """
    return await anyio.to_thread.run_sync(review.label, registry, name, body,
                                          client.name)
