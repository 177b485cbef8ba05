"""Contracts of the classifier-head service (called by the gateway, not by product apps)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from shared.contracts.rollout import Candidate, Role
from shared.contracts.text import Text


class ClassifyRequest(BaseModel):
    texts: list[Text] = Field(min_length=1, examples=[["where is my parcel", "book a table"]])
    top_k: int = Field(3, ge=1, le=50)
    version: int | None = Field(None, ge=1, le=2**31 - 1, description="answer with this version "
                                "(pinned) instead of production or a canary")
    routing_key: str | None = Field(None, max_length=200, description="who is asking: the same "
                                    "key always gets the same side of a canary (random if none)")


class LabelScore(BaseModel):
    label: str
    probability: float


class Answer(BaseModel):
    """One text's answer, as the classifier gives it and the gateway passes it on."""

    label: str | None = Field(description="null when the model abstains (out of scope)")
    probability: float
    top: list[LabelScore]
    abstained: bool


class TextPrediction(Answer):
    cached: bool = Field(description="the embedding came from the phrase cache")


class Timings(BaseModel):
    embed_ms: float
    head_ms: float
    total_ms: float


class ShadowAnswer(BaseModel):
    """The shadow candidate's predictions on the same embeddings: for the log, never for the
    caller."""

    version: int
    head_type: str
    head_ms: float
    predictions: list[TextPrediction]


class ClassifyResponse(BaseModel):
    model: str
    version: int
    role: Role = Field("production", description="which alias answered: production, pinned "
                       "(the version asked for) or canary")
    head_type: str
    embedder_model: str
    predictions: list[TextPrediction]
    timings: Timings
    shadow: ShadowAnswer | None = None


class LoadedHead(BaseModel):
    model: str
    version: int
    head_type: str
    labels: int
    threshold: float | None
    embedder_model: str
    loaded_at: datetime
    candidate: Candidate | None = Field(None, description="the shadow or canary loaded beside")


class LoadedHeadList(BaseModel):
    object: str = "list"
    data: list[LoadedHead]
