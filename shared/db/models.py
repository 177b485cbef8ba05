"""Every table, in four groups:

- the model registry: ``models``, ``model_versions``, ``alias_events`` (production and
  candidate moves), ``candidate_failures``;
- training: ``training_jobs``;
- the inference log: ``inferences`` (one row per answer, partitioned by day on PostgreSQL),
  ``inference_feedback``, and the hourly rollups ``inference_rollups``,
  ``inference_rollup_labels`` and ``inference_rollup_latency`` that reports read;
- the gateway's ``api_keys``.

Ops dashboards read these with plain SQL, so names are explicit and metrics are JSON(B).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Double,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from shared.db.types import JSONType, UTCDateTime, utcnow


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSONType}
    if TYPE_CHECKING:  # what SQLAlchemy's declarative mapping builds for every model
        __table__: ClassVar[Table]


class Model(Base):
    """A named classifier (``intents``); ``production_version`` is its ``production`` alias."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    production_version: Mapped[int | None]
    # The rollout candidate (at most one): a version that sees ``candidate_share`` of the
    # requests beside production (``shadow``: never answers) or instead of it (``canary``).
    candidate_version: Mapped[int | None]
    candidate_mode: Mapped[str | None] = mapped_column(String(10))
    candidate_share: Mapped[float | None] = mapped_column(Double)
    # Its promotion and withdrawal rules (shared.contracts.rollout.Policy as JSON), if any.
    candidate_policy: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    versions: Mapped[list[ModelVersion]] = relationship(back_populates="model",
                                                        order_by="ModelVersion.version")


class ModelVersion(Base):
    """One trained head: an immutable artifact plus the report it was chosen with."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version: Mapped[int]
    # new (never in production) | production (the alias points here) | archived (in production
    # before); a shadow or canary is the model's candidate alias, not a status
    status: Mapped[str] = mapped_column(String(20), default="new")
    head_type: Mapped[str] = mapped_column(String(20))
    artifact_uri: Mapped[str] = mapped_column(Text)
    embedder_model: Mapped[str] = mapped_column(String(300))
    embedder_dim: Mapped[int]
    num_classes: Mapped[int]
    train_rows: Mapped[int]
    weighted_f1: Mapped[float | None]  # CV weighted F1, the promotion criterion (also in metrics)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    data_fingerprint: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    model: Mapped[Model] = relationship(back_populates="versions")


class AliasEvent(Base):
    """Every move of a model's ``production`` alias (the audit trail and the rollback path) or
    of its ``candidate`` alias (``to_version`` None: the candidate was withdrawn)."""

    __tablename__ = "alias_events"
    __table_args__ = (Index("ix_alias_events_model_time", "model_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(30), default="production")
    from_version: Mapped[int | None]
    to_version: Mapped[int | None]
    # production: promote | auto_promote | rollback; candidate: shadow | canary | withdraw
    action: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(100), default="system")
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrainingJob(Base):
    """A request to train a head; the queue carries only its id, the state lives here."""

    __tablename__ = "training_jobs"
    __table_args__ = (Index("ix_training_jobs_status", "status", "heartbeat_at"),
                      Index("ix_training_jobs_created", "created_at"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    stage: Mapped[str] = mapped_column(String(40), default="queued")
    progress: Mapped[float] = mapped_column(default=0.0)
    source: Mapped[str] = mapped_column(String(20), default="csv")  # csv | feedback
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    upload_uri: Mapped[str | None] = mapped_column(Text)
    filename: Mapped[str | None] = mapped_column(String(300))
    upload_bytes: Mapped[int] = mapped_column(Integer, default=0)
    report: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[int | None]
    promoted: Mapped[bool | None]
    attempts: Mapped[int] = mapped_column(default=0)
    worker: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]


class Inference(Base):
    """One prediction served by the gateway, one row each (shipped from the gateway's log).

    On PostgreSQL the table is partitioned by day on ``created_at`` (so the primary key is
    ``(id, created_at)``; :mod:`shared.db.partitions` creates and drops partitions); on SQLite
    it is a plain table keyed by ``id``. ``feedback_label`` is the ground truth a product app
    reports later; the trainer retrains from rows that have one (``source=feedback``).
    """

    __tablename__ = "inferences"
    __table_args__ = (Index("ix_inferences_model_time", "model_name", "created_at"),
                      Index("ix_inferences_feedback", "model_name", "feedback_at"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(primary_key=True, default=utcnow)
    request_id: Mapped[str | None] = mapped_column(String(64))
    client: Mapped[str | None] = mapped_column(String(100))
    model_name: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[int]
    head_type: Mapped[str] = mapped_column(String(20))
    embedder_model: Mapped[str] = mapped_column(String(300))
    input_text: Mapped[str] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(String(200))
    probability: Mapped[float]
    top_k: Mapped[dict[str, Any]] = mapped_column(default=dict)
    abstained: Mapped[bool] = mapped_column(default=False)
    cache_hit: Mapped[bool | None]
    embed_ms: Mapped[float | None]
    head_ms: Mapped[float | None]
    total_ms: Mapped[float | None]
    feedback_label: Mapped[str | None] = mapped_column(String(200))
    feedback_at: Mapped[datetime | None]
    # production | pinned (the caller asked for the version) | canary | shadow (never answered:
    # a candidate's prediction on the input of the production row ``shadow_of``; reports and
    # rollups leave shadow rows out)
    role: Mapped[str] = mapped_column(String(10), server_default="production")
    shadow_of: Mapped[str | None] = mapped_column(String(32))


class CandidateFailure(Base):
    """Requests a candidate could not answer (``kind`` ``predict``) or times its head could not
    load (``load``), per minute, added up by every classifier at its registry polls: failed
    predictions leave no inference row, and the rollout watcher withdraws a failing canary."""

    __tablename__ = "candidate_failures"
    # Key order: the watcher reads one model's recent minutes.
    __table_args__ = (PrimaryKeyConstraint("model_name", "minute", "model_version", "kind"),)

    model_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    minute: Mapped[datetime] = mapped_column(primary_key=True)
    model_version: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    failures: Mapped[int] = mapped_column(BigInteger)


class FeedbackEvent(Base):
    """Every feedback sent on an inference, kept: which label, from which client, when. The
    inference's ``feedback_label`` is the latest of them (what retraining and reports use)."""

    __tablename__ = "inference_feedback"
    __table_args__ = (Index("ix_inference_feedback_inference", "inference_id", "id"),
                      Index("ix_inference_feedback_model_time", "model_name", "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    inference_id: Mapped[str] = mapped_column(String(32))
    model_name: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[int]
    label: Mapped[str] = mapped_column(String(200))
    predicted: Mapped[str | None] = mapped_column(String(200))  # the inference's own answer
    client: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class InferenceRollup(Base):
    """Per model, version and hour: sums and counts behind every report figure, kept up to date
    as rows ship (:mod:`shared.db.rollups`), so a report reads hours, never raw rows."""

    __tablename__ = "inference_rollups"
    # Key order: a report reads one model's hours, across its versions.
    __table_args__ = (PrimaryKeyConstraint("model_name", "hour", "model_version"),)

    model_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    model_version: Mapped[int] = mapped_column(primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    inferences: Mapped[int] = mapped_column(BigInteger, default=0)
    abstained: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_hits: Mapped[int] = mapped_column(BigInteger, default=0)
    sum_probability: Mapped[float] = mapped_column(Double, default=0.0)
    timed: Mapped[int] = mapped_column(BigInteger, default=0)  # rows with latency figures
    sum_total_ms: Mapped[float] = mapped_column(Double, default=0.0)
    sum_embed_ms: Mapped[float] = mapped_column(Double, default=0.0)
    sum_head_ms: Mapped[float] = mapped_column(Double, default=0.0)
    feedback: Mapped[int] = mapped_column(BigInteger, default=0)
    feedback_correct: Mapped[int] = mapped_column(BigInteger, default=0)


class InferenceRollupLabel(Base):
    """Per model, version and hour: how often each label was answered (``(abstained)``: none),
    and the sum of those answers' probabilities (a label's mean confidence)."""

    __tablename__ = "inference_rollup_labels"
    # Key order: a report reads one model's hours, across its versions.
    __table_args__ = (PrimaryKeyConstraint("model_name", "hour", "model_version", "label"),)

    model_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    model_version: Mapped[int] = mapped_column(primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(200), primary_key=True)
    inferences: Mapped[int] = mapped_column(BigInteger, default=0)
    sum_probability: Mapped[float] = mapped_column(Double, default=0.0)


class InferenceRollupLatency(Base):
    """Per model, version and hour: a latency histogram (``total_ms``), Prometheus-style: the
    count of rows with ``le_ms`` as their bucket's upper bound (buckets in
    :data:`shared.db.rollups.LATENCY_BUCKETS_MS`; the last is +Infinity)."""

    __tablename__ = "inference_rollup_latency"
    # Key order: a report reads one model's hours, across its versions.
    __table_args__ = (PrimaryKeyConstraint("model_name", "hour", "model_version", "le_ms"),)

    model_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    model_version: Mapped[int] = mapped_column(primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    le_ms: Mapped[float] = mapped_column(Double, primary_key=True)
    inferences: Mapped[int] = mapped_column(BigInteger, default=0)


class ApiKey(Base):
    """A gateway API key: only its SHA-256 is stored (keys are 32 random bytes, so a plain
    hash is enough; the key itself is shown once, at creation)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(200))  # comma-separated: predict,admin
    rate_limit: Mapped[str | None] = mapped_column(String(100))  # "100/second"; None: default
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
