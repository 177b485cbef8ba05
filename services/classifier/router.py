"""HTTP layer of a classifier-head service (internal: the gateway calls it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from services.classifier.service import ClassifierService
from shared.contracts.classify import ClassifyRequest, ClassifyResponse, LoadedHead, LoadedHeadList
from shared.contracts.explain import ExplainRequest, ExplainResponse
from shared.contracts.review import ClusterRequest, ClusterResponse
from shared.web.app import error_responses

router = APIRouter(tags=["classify"], responses=error_responses(404))


async def get_service(request: Request) -> ClassifierService:
    """``async``: FastAPI would run a plain ``def`` in a worker thread, a hop per request."""
    service: ClassifierService = request.app.state.service
    return service


ServiceDep = Annotated[ClassifierService, Depends(get_service)]


@router.post("/v1/classify/{model}", response_model=ClassifyResponse)
async def classify(model: str, body: ClassifyRequest, service: ServiceDep) -> ClassifyResponse:
    """Classify texts with the production version of ``model`` (one embedder call), or the
    ``version`` asked for, or the canary for a ``routing_key`` in its share; a shadow's
    predictions come back in ``shadow``, for the gateway's log. 404 an unknown model, or a
    version the model does not have (``param`` ``version``, naming the ones it has).

    ```
    curl -s localhost:8002/v1/classify/intents -H 'content-type: application/json' \\
         -d '{"texts": ["where is my parcel"], "top_k": 3}'
    ```
    """
    return await service.classify(model, body.texts, body.top_k, body.version,
                                  body.routing_key)


@router.post("/v1/explain/{model}", response_model=ExplainResponse)
async def explain(model: str, body: ExplainRequest, service: ServiceDep) -> ExplainResponse:
    """Which words moved the answer of ``model`` for one text: leave-one-word-out, the text
    and one variant per word embedded in one embedder call. Not counted as predictions.

    ```
    curl -s localhost:8002/v1/explain/intents -H 'content-type: application/json' \\
         -d '{"text": "where is my parcel"}'
    ```
    A text of more than ``CLASSIFIER_EXPLAIN_MAX_WORDS`` words answers 422.
    """
    return await service.explain(model, body.text)


@router.post("/v1/cluster/{model}", response_model=ClusterResponse)
async def cluster(model: str, body: ClusterRequest, service: ServiceDep) -> ClusterResponse:
    """Group texts by meaning (the gateway's review queue): clusters largest first, each
    with its distinctive words and the production version's nearest label; the texts, up to
    2000, embedded in one embedder call. Not counted as predictions.

    ```
    curl -s localhost:8002/v1/cluster/intents -H 'content-type: application/json' \\
         -d '{"texts": ["book a table for two", "reserve a table tonight", "hi"]}'
    ```
    """
    return await service.cluster(model, body.texts)


@router.get("/v1/heads", response_model=LoadedHeadList)
async def heads(service: ServiceDep) -> LoadedHeadList:
    """The production heads loaded here (model, version, head type, when it was swapped in)
    and each one's shadow or canary candidate."""
    return LoadedHeadList(data=[
        LoadedHead(model=s.model, version=s.version, head_type=s.head.kind,
                   labels=len(s.head.labels), threshold=s.head.threshold,
                   embedder_model=s.head.embedder_model, loaded_at=s.loaded_at,
                   candidate=rollout.candidate if rollout else None)
        for s in service.heads.all() for rollout in [service.heads.candidate(s.model)]])
