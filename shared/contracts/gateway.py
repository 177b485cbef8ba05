"""The public API's contracts: what product apps and the Locust load tests send and receive."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

from shared.contracts.classify import LabelScore
from shared.text import problem


class PredictRequest(BaseModel):
    """One ``text`` or a list of ``texts`` (not both)."""

    text: str | None = Field(None, examples=["where is my parcel"])
    texts: list[str] | None = Field(None, examples=[["where is my parcel", "book a table"]])
    top_k: int | None = Field(None, ge=1, le=50, description="labels in `top` (default 3)")

    @model_validator(mode="before")
    @classmethod
    def _one_of(cls, data: Any) -> Any:
        if isinstance(data, dict):
            has_text, has_texts = data.get("text") is not None, data.get("texts") is not None
            if has_text == has_texts:
                raise ValueError("send either \"text\" (a string) or \"texts\" (a list of strings)")
            if has_text and not isinstance(data["text"], str):
                raise ValueError(f"text must be a string, not {type(data['text']).__name__}")
            if has_text and (why := problem(data["text"])):
                raise ValueError(f"text {why}")
            if has_texts:
                if not isinstance(data["texts"], list) or not data["texts"]:
                    raise ValueError("texts must be a non-empty list of strings")
                for i, item in enumerate(data["texts"]):
                    if not isinstance(item, str):
                        raise ValueError(f"texts[{i}] is {type(item).__name__}, not a string")
                    if why := problem(item):
                        raise ValueError(f"texts[{i}] {why}")
        return data

    def all_texts(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])


class Prediction(BaseModel):
    label: str | None = Field(description="null when the model abstains (out of scope)")
    probability: float
    top: list[LabelScore]
    abstained: bool
    inference_id: str = Field(description="send feedback with POST /v1/inferences/{id}/feedback")


class PredictResponse(BaseModel):
    model: str
    version: int
    predictions: list[Prediction]


class FeedbackRequest(BaseModel):
    label: str = Field(min_length=1, max_length=200, description="the true label")

    @field_validator("label")
    @classmethod
    def _storable(cls, value: str) -> str:
        if why := problem(value):
            raise ValueError(f"label {why}")
        if not value.strip():
            raise ValueError("label is empty or only whitespace")
        return value


class FeedbackResponse(BaseModel):
    inference_id: str
    label: str
    predicted: str | None
