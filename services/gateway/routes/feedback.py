"""The true label of an earlier prediction (predict scope): ground truth for retraining."""

from __future__ import annotations

import asyncio
import time

import anyio
from fastapi import APIRouter

from services.gateway.deps import PredictClient, RegistryDep
from services.gateway.feedback import INFERENCE_ID, store_feedback
from shared.contracts.gateway import FeedbackRequest, FeedbackResponse
from shared.errors import NotFound
from shared.web.app import error_responses

router = APIRouter(tags=["feedback"], responses=error_responses(401, 403, 404))
FEEDBACK_WAIT_S = 2.0


@router.post("/v1/inferences/{inference_id}/feedback", response_model=FeedbackResponse)
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
    if not INFERENCE_ID.fullmatch(inference_id):  # ids are uuid4 hex; nothing else exists
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

