"""Contracts of the trainer and the model registry, shared by the service, the CLI and tests."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from shared.contracts.body import RequestBody
from shared.contracts.rollout import Candidate
from shared.contracts.text import Text

JobState = Literal["queued", "running", "succeeded", "failed"]
HeadChoice = Literal["auto", "logreg", "mlp", "xgboost"]
MODEL_NAME = r"^[a-z0-9][a-z0-9_.-]{0,99}$"


# A short free-text field that ends up in the database (column names, labels).
Label = Annotated[Text, Field(max_length=200)]


class TrainOptions(BaseModel):
    """How to train. Everything has a default a person without ML background can keep."""

    head: HeadChoice = "auto"
    cv_folds: int = Field(5, ge=2, le=20)
    class_weight: Literal["auto", "balanced", "none"] = Field(
        "auto", description="auto: compare balanced and unweighted on one fold, keep the better")
    oos_label: Label | None = Field(None, description="rows with this label are out-of-scope "
                                  "examples: not a class, used to calibrate the threshold")
    threshold: Literal["auto", "calibrate", "none"] | float = Field(
        "auto", description="when to abstain (label null). auto (= calibrate): below an "
        "in-scope score (top probability and closeness to the training texts) whose threshold "
        "is calibrated on held-out predictions, with or without out-of-scope rows; none: never; "
        "a number: when the top probability is below it")
    text_column: Label = "text"
    label_column: Label = "label"
    seed: int = Field(0, ge=0, le=2**32 - 1)
    promote: Literal["if_not_worse", "always", "never"] | None = Field(
        None, description="default: the trainer's setting (if_not_worse)")

    @field_validator("threshold", mode="before")
    @classmethod
    def _threshold(cls, value: Any) -> Any:
        """One clear sentence instead of one error per branch of the union."""
        if value in ("auto", "calibrate", "none"):
            return value
        try:
            number = float(value)  # a number, or a numeric string
        except (TypeError, ValueError, OverflowError):
            number = float("nan")
        if isinstance(value, bool) or not 0 <= number <= 1:
            raise ValueError("threshold must be auto, calibrate, none or a number between 0 and 1")
        return number


class TrainOptionsBody(RequestBody, TrainOptions):
    """:class:`TrainOptions` in a request body: unknown options are refused. (Stored job options
    carry extra keys such as ``source_model``, so :class:`TrainOptions` itself ignores them.)"""


class ModelRef(BaseModel):
    name: str
    version: int


class Job(BaseModel):
    id: str
    model_name: str
    status: JobState
    stage: str
    progress: float = Field(ge=0, le=1)
    source: str
    options: dict[str, Any]
    filename: str | None = None
    metrics: dict[str, Any] | None = Field(None, description="headline metrics once trained")
    report: dict[str, Any] | None = Field(None, description="full report (GET /v1/jobs/{id})")
    model: ModelRef | None = None
    promoted: bool | None = None
    error: str | None = Field(None, description="why it failed, in words a person can act on")
    attempts: int = 0
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class JobList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Job]


class FeedbackJobRequest(RequestBody):
    """Train from inferences that received feedback (the gateway's ``/feedback``)."""

    name: str = Field(pattern=MODEL_NAME)
    source_model: Label | None = Field(None, description="feedback on this model (default: name)")
    options: TrainOptionsBody = TrainOptionsBody()


class Version(BaseModel):
    model: str
    version: int
    status: Literal["new", "production", "archived"] = Field(
        description="new: never in production; archived: in production before (a shadow or "
        "canary is the model's candidate, not a status)")
    head_type: str
    artifact_uri: str
    embedder_model: str
    embedder_dim: int
    num_classes: int
    train_rows: int
    weighted_f1: float | None
    metrics: dict[str, Any]
    params: dict[str, Any]
    data_fingerprint: str
    job_id: str | None
    created_at: datetime


class ModelInfo(BaseModel):
    name: str
    production_version: int | None
    candidate: Candidate | None = Field(None, description="the shadow or canary version, if any")
    versions: list[Version]
    created_at: datetime
    updated_at: datetime


class ModelInfoList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelInfo]


class PromoteRequest(RequestBody):
    version: int = Field(ge=1, le=2**31 - 1)
    reason: str = Field("", max_length=500)


class RollbackRequest(RequestBody):
    reason: str = Field("", max_length=500)


class AliasMove(BaseModel):
    model: str
    from_version: int | None
    to_version: int
    action: str
