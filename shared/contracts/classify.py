"""Contracts of the classifier-head service (called by the gateway, not by product apps)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

from shared.text import problem


class ClassifyRequest(BaseModel):
    texts: list[str] = Field(min_length=1, examples=[["where is my parcel", "book a table"]])
    top_k: int = Field(3, ge=1, le=50)

    @field_validator("texts", mode="before")
    @classmethod
    def _strings_only(cls, value: Any) -> Any:
        if isinstance(value, list):
            for i, item in enumerate(value):
                if not isinstance(item, str):
                    raise ValueError(f"texts[{i}] is {type(item).__name__}, not a string")
                if why := problem(item):
                    raise ValueError(f"texts[{i}] {why}")
        return value


class LabelScore(BaseModel):
    label: str
    probability: float


class TextPrediction(BaseModel):
    label: str | None = Field(description="null when the head abstains (out of scope)")
    probability: float
    top: list[LabelScore]
    abstained: bool
    cached: bool = Field(description="the embedding came from the phrase cache")


class Timings(BaseModel):
    embed_ms: float
    head_ms: float
    total_ms: float


class ClassifyResponse(BaseModel):
    model: str
    version: int
    head_type: str
    embedder_model: str
    predictions: list[TextPrediction]
    timings: Timings


class LoadedHead(BaseModel):
    model: str
    version: int
    head_type: str
    labels: int
    threshold: float | None
    embedder_model: str
    loaded_at: datetime


class LoadedHeadList(BaseModel):
    object: str = "list"
    data: list[LoadedHead]
