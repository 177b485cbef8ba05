"""HTTP layer of a classifier-head service (internal: the gateway calls it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from services.classifier.service import ClassifierService
from shared.app import error_responses
from shared.contracts.classify import ClassifyRequest, ClassifyResponse, LoadedHead, LoadedHeadList

router = APIRouter(tags=["classify"], responses=error_responses(404))


def get_service(request: Request) -> ClassifierService:
    service: ClassifierService = request.app.state.service
    return service


ServiceDep = Annotated[ClassifierService, Depends(get_service)]


@router.post("/v1/classify/{model}", response_model=ClassifyResponse)
async def classify(model: str, body: ClassifyRequest, service: ServiceDep) -> ClassifyResponse:
    """Classify texts with the production version of ``model`` (one embedder call).

    ```
    curl -s localhost:8002/v1/classify/intents -H 'content-type: application/json' \\
         -d '{"texts": ["where is my parcel"], "top_k": 3}'
    ```
    """
    return await service.classify(model, body.texts, body.top_k)


@router.get("/v1/heads", response_model=LoadedHeadList)
async def heads(service: ServiceDep) -> LoadedHeadList:
    """The heads loaded here: model, version, head type, when it was swapped in."""
    return LoadedHeadList(data=[
        LoadedHead(model=s.model, version=s.version, head_type=s.head.kind,
                   labels=len(s.head.labels), threshold=s.head.threshold,
                   embedder_model=s.head.embedder_model, loaded_at=s.loaded_at)
        for s in service.heads.all()])
