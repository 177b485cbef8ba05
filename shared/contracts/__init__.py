"""Pydantic contracts between polyhead services, defined once and imported by both sides.

Only pydantic here (no FastAPI, no torch), so clients and load tests import them cheaply.
"""

from shared.contracts.embeddings import (
    EmbeddingData,
    EmbeddingRequest,
    EmbeddingResponse,
    ModelCard,
    ModelList,
    Usage,
)
from shared.contracts.errors import ErrorDetail, ErrorResponse
from shared.contracts.health import Health, Readiness

__all__ = [
    "EmbeddingData",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "ErrorDetail",
    "ErrorResponse",
    "Health",
    "ModelCard",
    "ModelList",
    "Readiness",
    "Usage",
]
