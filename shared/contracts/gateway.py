"""The public API's contracts: what product apps and the Locust load tests send and receive."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator, model_validator

from shared.contracts.body import RequestBody
from shared.contracts.classify import Answer
from shared.contracts.rollout import Role
from shared.contracts.text import Text


class PredictRequest(RequestBody):
    """One ``text`` or a list of ``texts`` (not both)."""

    text: Text | None = Field(None, examples=["where is my parcel"])
    texts: list[Text] | None = Field(None, min_length=1,
                                     examples=[["where is my parcel", "book a table"]])
    top_k: int | None = Field(None, ge=1, le=50, description="labels in `top` (default 3)")
    version: int | None = Field(None, ge=1, le=2**31 - 1, examples=[3], description="answer "
                                "with this version of the model (pinned) instead of production; "
                                "404 naming the versions if it has none such")
    routing_key: str | None = Field(None, min_length=1, max_length=200, description="who to keep "
                                    "on one side of a canary (default: the API key's name)")

    @model_validator(mode="after")
    def _one_of(self) -> PredictRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError("send either \"text\" (a string) or \"texts\" (a list of strings)")
        return self

    def all_texts(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])


class Prediction(Answer):
    inference_id: str = Field(description="send feedback with POST /v1/inferences/{id}/feedback")


class PredictResponse(BaseModel):
    model: str
    version: int
    role: Role = Field("production", description="which alias answered: production, pinned "
                       "(the version asked for) or canary (a version being tried on a share of "
                       "callers)")
    predictions: list[Prediction]


class FeedbackRequest(RequestBody):
    label: Text = Field(min_length=1, max_length=200, description="the true label: one the "
                        "predicting version knows (else 422 naming them), unless new_label")
    new_label: bool = Field(False, description="the label is new to the model: accept it anyway "
                            "(a retraining from feedback will learn it)")

    @field_validator("label")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("label is empty or only whitespace")
        return value


class FeedbackResponse(BaseModel):
    inference_id: str
    label: str
    predicted: str | None


class KeyInfo(BaseModel):
    """The API key a request was sent with: ``GET /v1/me``."""

    name: str = Field(description="the key's name (the client it was created for)")
    scopes: list[str] = Field(description="what the key may do: predict, admin or both",
                              examples=[["predict", "admin"]])
