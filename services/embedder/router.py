"""HTTP layer of the embedder: OpenAI-shaped routes over :class:`EmbeddingService`."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from services.embedder.service import EmbeddingService, Result
from shared.app import error_responses
from shared.contracts.embeddings import EmbeddingRequest, EmbeddingResponse, ModelCard, ModelList
from shared.errors import Unavailable
from shared.responses import JSONBytes

router = APIRouter(tags=["embeddings"], responses=error_responses(404))


def get_service(request: Request) -> EmbeddingService:
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
    texts = body.texts()
    service.check_request(texts, body.model, body.dimensions)
    results = await service.embed(texts)
    content = _render(results, service.info.model_id, service.info.identity,
                      body.encoding_format)
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
                                     identity=info.identity)])


def _render(results: list[Result], model_id: str, identity: str,
            encoding: str) -> dict[str, Any]:
    """The response as plain data: orjson writes the numpy vectors directly."""
    data, tokens = [], 0
    for index, result in enumerate(results):
        item = result.embedded
        vector: Any = item.vector
        if encoding == "base64":
            vector = base64.b64encode(item.vector.astype("<f4").tobytes()).decode()
        data.append({"object": "embedding", "index": index, "embedding": vector,
                     "truncated": item.truncated, "cached": result.source != "computed"})
        tokens += item.tokens
    return {"object": "list", "data": data, "model": model_id,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            "embedding_identity": identity}
