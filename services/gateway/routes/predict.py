"""Predictions and explanations (predict scope)."""

from __future__ import annotations

from fastapi import APIRouter

from services.gateway.deps import PredictClient, ServiceDep
from shared.contracts.explain import ExplainRequest, ExplainResponse
from shared.contracts.gateway import PredictRequest, PredictResponse
from shared.web.app import error_responses

router = APIRouter(tags=["predict"], responses=error_responses(401, 403, 404))


@router.post("/v1/models/{name}/predict", response_model=PredictResponse)
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


@router.post("/v1/models/{name}/explain", response_model=ExplainResponse)
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
