"""The public HTTP API: predict, models, feedback. Every route needs an API key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from sqlalchemy import update

from services.gateway.auth import Client, KeyStore
from services.gateway.service import PredictService
from shared.contracts.gateway import FeedbackRequest, FeedbackResponse, PredictRequest, PredictResponse
from shared.contracts.training import ModelInfo, ModelInfoList
from shared.db.models import Inference
from shared.db.types import utcnow
from shared.errors import NotFound, Unavailable
from shared.registry import Registry

router = APIRouter()
ANONYMOUS = Client("anonymous", frozenset({"predict", "admin"}))


def _require(scope: str):  # type: ignore[no-untyped-def]
    def dependency(request: Request,
                   authorization: Annotated[str | None, Header()] = None) -> Client:
        keys: KeyStore | None = request.app.state.keys
        return ANONYMOUS if keys is None else keys.authenticate(authorization, scope)
    return dependency


PredictClient = Annotated[Client, Depends(_require("predict"))]


def get_service(request: Request) -> PredictService:
    service: PredictService = request.app.state.service
    return service


def get_registry(request: Request) -> Registry:
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
    """
    return await service.predict(name, body.all_texts(), body.top_k, client.name)


@router.get("/v1/models", response_model=ModelInfoList, tags=["models"])
def list_models(registry: RegistryDep, client: PredictClient) -> ModelInfoList:
    """Every model with its versions, metrics and which version is in production."""
    return ModelInfoList(data=registry.list_models())


@router.get("/v1/models/{name}", response_model=ModelInfo, tags=["models"])
def get_model(name: str, registry: RegistryDep, client: PredictClient) -> ModelInfo:
    return registry.model(name)


@router.post("/v1/inferences/{inference_id}/feedback", response_model=FeedbackResponse,
             tags=["feedback"])
def feedback(inference_id: str, body: FeedbackRequest, registry: RegistryDep,
             client: PredictClient) -> FeedbackResponse:
    """Record the true label of an earlier prediction (ground truth for retraining).

    ```
    curl -s localhost:8000/v1/inferences/$ID/feedback -H "Authorization: Bearer $KEY" \\
         -H 'content-type: application/json' -d '{"label": "track_parcel"}'
    ```
    """
    try:
        with registry.sessions.begin() as s:
            row = s.get(Inference, inference_id)
            if row is not None:
                s.execute(update(Inference).where(Inference.id == inference_id)
                          .values(feedback_label=body.label, feedback_at=utcnow()))
    except Exception as exc:  # noqa: BLE001
        raise Unavailable("the inference database is unavailable; retry shortly",
                          retry_after_s=5) from exc
    if row is None:
        raise NotFound(f"unknown inference {inference_id!r} (a prediction is logged within a "
                       "second; retry shortly if it is that recent)", param="inference_id")
    return FeedbackResponse(inference_id=inference_id, label=body.label, predicted=row.label)
