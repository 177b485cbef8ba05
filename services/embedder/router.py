"""HTTP layer of the embedder: OpenAI-shaped routes over :class:`EmbeddingService`, and the
features route classifier heads use."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from services.embedder.service import EmbeddingService, Result
from shared.contracts.embeddings import (
    SENTENCE_LEXICAL,
    EmbeddingRequest,
    EmbeddingResponse,
    FeaturesRequest,
    FeaturesResponse,
    ModelCard,
    ModelList,
)
from shared.errors import Unavailable
from shared.web.app import error_responses
from shared.web.responses import JSONBytes

router = APIRouter(tags=["embeddings"], responses=error_responses(404))


async def get_service(request: Request) -> EmbeddingService:
    """``async``: FastAPI would run a plain ``def`` in a worker thread, a hop per request."""
    service: EmbeddingService | None = getattr(request.app.state, "service", None)
    if service is None:
        if getattr(request.app.state, "load_failed", False):
            raise Unavailable("the model failed to load; see the service logs", retry_after_s=2)
        raise Unavailable("the model is still loading; see GET /ready", retry_after_s=2)
    return service


ServiceDep = Annotated[EmbeddingService, Depends(get_service)]


@router.post("/v1/embeddings", response_model=EmbeddingResponse)
async def create_embeddings(body: EmbeddingRequest, service: ServiceDep) -> JSONBytes:
    """Embed one text or a list of texts (OpenAI-compatible).

    ```
    curl -s localhost:8001/v1/embeddings -H 'content-type: application/json' \\
         -d '{"input": ["where is my parcel", "book a table for two"]}'
    ```
    Vectors are L2-normalised. Texts longer than the model's limit are truncated and marked
    ``truncated``; ``cached`` marks vectors served from the phrase cache.
    """
    return await _answer(body, service, features=False)


@router.post("/v1/features", response_model=FeaturesResponse)
async def create_features(body: FeaturesRequest, service: ServiceDep) -> JSONBytes:
    """What classifier heads take: each text's sentence vector then its lexical vector.

    ```
    curl -s localhost:8001/v1/features -H 'content-type: application/json' \\
         -d '{"input": ["where is my parcel"], "encoding_format": "float"}'
    ```
    Same input, limits and errors as ``/v1/embeddings``; rows are base64 float32 by default,
    ``2 * dimension`` long: [sentence | lexical], each L2-normalised. The lexical vector is the
    mean of the model's embedding layer output (which words a text has, without context).
    """
    return await _answer(body, service, features=True)


async def _answer(body: EmbeddingRequest, service: EmbeddingService, *,
                  features: bool) -> JSONBytes:
    texts = body.texts()
    service.check_request(texts, body.model, body.dimensions)
    results = await service.embed(texts)
    content = _render(results, service.info.model_id, service.info.identity,
                      body.encoding_format, features=features)
    if features:
        content |= {"dimension": service.info.dimension, "features": SENTENCE_LEXICAL}
    truncated = sum(r.embedded.truncated for r in results)
    headers = {"X-Polyhead-Truncated": str(truncated)} if truncated else None
    return JSONBytes(content, headers=headers)


@router.get("/v1/models", response_model=ModelList)
async def list_models(service: ServiceDep) -> ModelList:
    """The served model. ``curl -s localhost:8001/v1/models``"""
    info = service.info
    return ModelList(data=[ModelCard(id=info.model_id, dimension=info.dimension,
                                     max_tokens=info.max_tokens, device=info.device,
                                     dtype=info.dtype, backend=info.backend,
                                     backend_chosen_by=info.chosen_by,
                                     identity=info.identity)])


def _render(results: list[Result], model_id: str, identity: str, encoding: str, *,
            features: bool) -> dict[str, Any]:
    """The response as plain data (the sentence vectors, or whole ``features`` rows): orjson
    writes the numpy vectors directly."""
    data, tokens = [], 0
    for index, result in enumerate(results):
        item = result.embedded
        vector: Any = item.features if features else item.sentence
        if encoding == "base64":
            vector = base64.b64encode(vector.astype("<f4").tobytes()).decode()
        data.append({"object": "embedding", "index": index, "embedding": vector,
                     "truncated": item.truncated, "cached": result.source != "computed"})
        tokens += item.tokens
    return {"object": "list", "data": data, "model": model_id,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            "embedding_identity": identity}
