"""Settings for every service, read from the environment with pydantic-settings.

One class per service, each with its own env prefix (``EMBEDDER_``, ...). The few values that
are shared across the whole deployment (``POLYHEAD_ENV``, ``REDIS_URL``, ``LOG_LEVEL``...) can be
set once without a prefix and overridden per service with the prefixed name.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["dev", "test", "prod"]
log = logging.getLogger(__name__)
# Old names still read (each an alias of its field), with a warning at start: old -> new.
DEPRECATED_GATEWAY_NAMES = {"GATEWAY_SPOOL_DIR": "GATEWAY_LOG_DIR",
                            "GATEWAY_DEAD_FOR_S": "GATEWAY_EJECTION_S"}


def _env(prefix: str, name: str) -> AliasChoices:
    """Accept ``PREFIX_NAME`` first, then the deployment-wide ``NAME``."""
    return AliasChoices(f"{prefix}{name}", name)


def _internal_token(prefix: str) -> Any:
    """``POLYHEAD_INTERNAL_TOKEN`` (or ``<PREFIX>INTERNAL_TOKEN``): the credential the gateway
    sends to the trainer's state-changing routes. Optional in dev/test, required in prod."""
    return Field(None, validation_alias=AliasChoices(f"{prefix}INTERNAL_TOKEN",
                                                     "POLYHEAD_INTERNAL_TOKEN"),
                 description="shared token for internal calls that change state (trainer)")


MIN_INTERNAL_TOKEN_CHARS = 32


def _check_internal_token(environment: str, token: SecretStr | None) -> None:
    if environment == "prod" and token is None:
        raise ValueError("POLYHEAD_INTERNAL_TOKEN must be set when POLYHEAD_ENV=prod: the "
                         "trainer's training, promote and rollback routes need it")
    if token is not None and len(token.get_secret_value()) < MIN_INTERNAL_TOKEN_CHARS:
        raise ValueError(f"POLYHEAD_INTERNAL_TOKEN must have at least "
                         f"{MIN_INTERNAL_TOKEN_CHARS} characters (e.g. openssl rand -hex 32)")


class ServiceSettings(BaseSettings):
    """Fields every service has. Subclasses set ``env_prefix``."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    environment: Environment = Field("dev", validation_alias=AliasChoices("POLYHEAD_ENV"))
    log_level: str = Field("INFO", validation_alias=AliasChoices("LOG_LEVEL"))
    log_json: bool = Field(True, validation_alias=AliasChoices("LOG_JSON"))
    access_log: bool = Field(False, validation_alias=AliasChoices("ACCESS_LOG"),
                             description="one log line per request (method, path, status, "
                             "duration, request id)")


class EmbedderSettings(ServiceSettings):
    """The central embedding service (``EMBEDDER_*``)."""

    model_config = SettingsConfigDict(env_prefix="EMBEDDER_", env_file=".env", extra="ignore",
                                      populate_by_name=True)

    # Model: a Hugging Face id, a local directory, or a model shipped as a Python package.
    model: str = "sentence-transformers/all-MiniLM-L6-v2"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"  # auto: fp16 on CUDA
    # On CPU the model runs ``concurrent_batches`` batches at once, each on ``threads`` threads:
    # 0 and 0 = one single-threaded batch per core (bench/RESULTS.md: 1.2-1.3x one batch on
    # all cores, in the service and in-process). On CUDA one batch at a time.
    threads: int = Field(0, ge=0, description="CPU threads of each batch's forward pass; "
                                              "0 = the cores over concurrent_batches")
    concurrent_batches: int = Field(0, ge=0, description="batches run at once on CPU, each "
                                                         "on its own thread; 0 = cores/threads")
    # auto: torch fp16 on CUDA; on CPU ONNX Runtime fp32 (exact, 1-2.8x torch), torch if the export
    # fails. onnx-int8 is lossy (its own embedding identity). fake: hash vectors, API tests only.
    backend: Literal["auto", "torch", "onnx", "onnx-int8", "fake"] = "auto"
    # Exported ONNX graphs are cached here; unset: beside the model if writable, else in
    # ~/.cache/polyhead/onnx.
    onnx_dir: str | None = None
    onnx_micro_batch: int = Field(32, ge=1,
                                  description="texts per ONNX Runtime run of a padded batch")
    # Padding-free forward passes (torch and ONNX): several texts per row, each attending only
    # to itself. auto = on CPU for BERT-family models (see bench/RESULTS.md).
    packing: Literal["auto", "on", "off"] = "auto"
    pack_tokens: int = Field(128, ge=16, description="about this many tokens per packed row")

    # Dynamic micro-batching.
    max_batch_size: int = Field(128, ge=1)
    max_batch_tokens: int = Field(16384, ge=16)
    max_wait_ms: float = Field(5.0, ge=0,
                               description="under load, at most this wait to fill a batch")
    max_queue_texts: int = Field(8192, ge=1, description="texts waiting before we answer 429")

    # Input limits.
    max_texts_per_request: int = Field(2048, ge=1)
    max_chars_per_text: int = Field(8192, ge=1)
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)

    # Phrase cache: in-process LRU in front of Redis (Redis optional).
    lru_size: int = Field(50_000, ge=0)
    redis_url: SecretStr | None = Field(None, validation_alias=_env("EMBEDDER_", "REDIS_URL"))
    redis_ttl_s: int = Field(7 * 24 * 3600, ge=1)
    redis_timeout_ms: float = Field(100.0, gt=0)
    redis_retry_after_s: float = Field(2.0, ge=0, description="pause Redis use after a failure")
    cache_namespace: str = "polyhead:emb:v1"

    @model_validator(mode="after")
    def _check(self) -> EmbedderSettings:
        if self.max_batch_tokens < self.max_batch_size:
            raise ValueError("max_batch_tokens must be >= max_batch_size")
        return self


class EmbedderClientSettings(BaseSettings):
    """How other services reach the embedder (``EMBEDDER_CLIENT_*``)."""

    model_config = SettingsConfigDict(env_prefix="EMBEDDER_CLIENT_", extra="ignore",
                                      populate_by_name=True)

    url: str = Field("http://127.0.0.1:8001",
                     validation_alias=_env("EMBEDDER_CLIENT_", "EMBEDDER_URL"))
    timeout_s: float = Field(10.0, gt=0)
    connect_timeout_s: float = Field(2.0, gt=0)
    max_connections: int = Field(32, ge=1)
    retries: int = Field(2, ge=0)
    retry_budget_ratio: float = Field(0.2, ge=0, description="retries at most ~this share of calls")
    batch_size: int = Field(256, ge=1, description="texts per HTTP call for large inputs")
    # Circuit breaker: after this many failed calls in a row, fail fast for breaker_ttl_s.
    breaker_threshold: int = Field(5, ge=1)
    breaker_ttl_s: float = Field(10.0, gt=0)


class TrainerSettings(ServiceSettings):
    """The trainer service and its workers (``TRAINER_*``).

    Embedded default: SQLite, a local artifact folder, and jobs run by a worker thread inside
    the trainer process. Set ``REDIS_URL`` (or ``TRAINER_QUEUE_URL``) and jobs go through a
    Redis queue to any number of ``polyhead-trainer-worker`` processes on any machines.
    """

    model_config = SettingsConfigDict(env_prefix="TRAINER_", env_file=".env", extra="ignore",
                                      populate_by_name=True)

    database_url: SecretStr = Field(SecretStr("sqlite:///var/polyhead.db"),
                                    validation_alias=_env("TRAINER_", "DATABASE_URL"))
    artifact_store: str = Field("var/artifacts",
                                validation_alias=_env("TRAINER_", "ARTIFACT_STORE"),
                                description="a folder, or an fsspec URL such as s3://bucket/heads")
    queue_url: SecretStr | None = Field(None, validation_alias=_env("TRAINER_", "REDIS_URL"),
                                        description="Redis for the job queue; unset = "
                                        "in-process worker")
    queue_namespace: str = "polyhead-trainer"
    run_worker: bool | None = Field(None, description="run a worker in the API process; "
                                    "default: only when there is no queue_url")
    auto_migrate: bool = Field(True, description="alembic upgrade head at startup")

    max_upload_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    max_rows: int = Field(1_000_000, ge=10)
    embed_batch: int = Field(512, ge=1, description="texts per embedder call")
    threads: int = Field(0, ge=0, description="torch threads for fitting; 0 = torch default")
    time_budget_s: float = Field(60.0, gt=0, description="for screening candidate heads")
    xgboost_max_classes: int = Field(20, ge=2, description="auto tries XGBoost up to this")
    max_accuracy_drop: float = Field(0.003, ge=0, le=1, description="in-scope accuracy the "
                                     "abstain threshold may cost, on held-out predictions")
    promote: Literal["if_not_worse", "always", "never"] = "if_not_worse"
    promote_tolerance: float = Field(0.0, ge=0, description="weighted F1 a new version may lose")

    job_time_limit_s: float = Field(3600.0, gt=0)
    max_attempts: int = Field(3, ge=1, description="tries per job (worker deaths and errors)")
    embedder_wait_s: float = Field(60.0, ge=0, description="how long a job waits, using no "
                                   "attempt, for an embedder that is unreachable or not ready")
    heartbeat_s: float = Field(5.0, gt=0, description="how often a running job reports in")
    stale_after_s: float = Field(60.0, gt=0, description="a running job silent this long "
                                 "lost its worker: it goes back to queued")
    queue_heartbeat_timeout_ms: int = Field(60_000, ge=100)
    queue_maintenance_chance: int = Field(1000, ge=0, le=1_000_000)
    internal_token: SecretStr | None = _internal_token("TRAINER_")

    @model_validator(mode="after")
    def _check_token(self) -> TrainerSettings:
        _check_internal_token(self.environment, self.internal_token)
        return self


class ClassifierSettings(ServiceSettings):
    """A classifier-head service (``CLASSIFIER_*``): serves the ``production`` version of one,
    several or all models, reloading within ``reload_interval_s`` of a promotion or rollback."""

    model_config = SettingsConfigDict(env_prefix="CLASSIFIER_", env_file=".env", extra="ignore",
                                      populate_by_name=True)

    models: str = Field("*", description="comma-separated model names, or * for all")
    database_url: SecretStr = Field(SecretStr("sqlite:///var/polyhead.db"),
                                    validation_alias=_env("CLASSIFIER_", "DATABASE_URL"))
    artifact_store: str = Field("var/artifacts",
                                validation_alias=_env("CLASSIFIER_", "ARTIFACT_STORE"))
    reload_interval_s: float = Field(2.0, gt=0)
    max_texts_per_request: int = Field(256, ge=1)
    max_chars_per_text: int = Field(2000, ge=1)
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    pinned_heads: int = Field(8, ge=1, description="versions pinned by callers kept loaded "
                              "(least recently used dropped), beside production and candidates")
    feature_cache_size: int = Field(10_000, ge=0, description="features rows kept in this "
                                    "process (0: none), ~3.2 KB each for a 384-d model: repeats "
                                    "skip the embedder")
    feature_cache_confirm_s: float = Field(5.0, gt=0, description="a cached row is served "
                                           "only within this long of an embedder answer of its "
                                           "identity (how soon a new model revision is seen)")
    explain_max_words: int = Field(64, ge=1, description="words in a text to explain; the "
                                   "text and one variant per word go in one embedder call, so "
                                   "the limit is also EMBEDDER_CLIENT_BATCH_SIZE - 1")

    def model_names(self) -> set[str] | None:
        """None = every model in the registry."""
        names = {n.strip() for n in self.models.split(",") if n.strip()}
        return None if not names or "*" in names else names


class GatewaySettings(ServiceSettings):
    """The public API (``GATEWAY_*``)."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=".env", extra="ignore",
                                      populate_by_name=True)

    database_url: SecretStr = Field(SecretStr("sqlite:///var/polyhead.db"),
                                    validation_alias=_env("GATEWAY_", "DATABASE_URL"))
    classifier_urls: str = Field("http://127.0.0.1:8002", validation_alias=_env(
        "GATEWAY_", "CLASSIFIER_URLS"), description="comma-separated classifier replicas")
    discover_classifiers: bool = Field(True, description="resolve each classifier URL's host "
                                       "to every replica's address (a headless Service)")
    routes_refresh_s: float = Field(2.0, gt=0, description="how often to find the replicas "
                                    "and ask who serves what")
    ejection_s: float = Field(5.0, gt=0, validation_alias=AliasChoices(
        "GATEWAY_EJECTION_S", "GATEWAY_DEAD_FOR_S"), description="an ejected replica sits out "
        "this long times its ejections in a row (GATEWAY_DEAD_FOR_S: its old name, deprecated)")
    max_ejection_s: float = Field(60.0, gt=0, description="the longest an ejection lasts")
    eject_after_5xx: int = Field(5, ge=1, description="5xx answers in a row, without "
                                 "Retry-After and not about one model, that eject a replica")
    timeout_s: float = Field(10.0, gt=0, description="calls to the trainer")
    try_timeout_s: float = Field(3.0, gt=0, description="one classifier replica's time to "
                                 "answer before the next is tried and it is ejected (hung)")
    predict_deadline_s: float = Field(4.0, gt=0, description="a prediction is answered, or "
                                      "refused with 503 and Retry-After, within this many "
                                      "seconds however many replicas are tried; the edge's "
                                      "timeout for predictions (5 s) must exceed it")
    max_texts_per_request: int = Field(64, ge=1)
    max_chars_per_text: int = Field(2000, ge=1)
    max_body_bytes: int = Field(256 * 1024, ge=1024)
    top_k: int = Field(3, ge=1, le=50)
    auth: bool = Field(True, description="require API keys (Authorization: Bearer ...)")
    rate_limit: str | None = Field(None, description="per key, for keys without their own "
                                   "limit, e.g. 100/second; unset: unlimited")
    auth_failure_limit: str | None = Field("20/minute", description="failed authentications "
                                           "(unknown keys) per client address before 429s; "
                                           "empty: unlimited")
    trusted_proxies: str = Field("127.0.0.1,::1", description="addresses and networks (comma-"
                                 "separated, CIDR allowed; * for any) whose X-Forwarded-For "
                                 "and X-Forwarded-Proto are believed: the ingress's pods")
    redis_url: SecretStr | None = Field(None, validation_alias=_env("GATEWAY_", "REDIS_URL"),
                                        description="rate-limit counters shared by all "
                                        "gateways")
    docs: bool | None = Field(None, description="serve /docs and /openapi.json without a key; "
                              "default: yes except when POLYHEAD_ENV=prod")
    console: bool = Field(True, description="serve the web console at /console; false: 404")
    trainer_url: str = Field("http://127.0.0.1:8003", validation_alias=_env("GATEWAY_",
                             "TRAINER_URL"), description="admin training routes go there")
    max_upload_bytes: int = Field(50 * 1024 * 1024, ge=1024, description="training CSVs")
    rollout_check_s: float = Field(30.0, ge=0, description="how often candidates' policies are "
                                   "applied (promote, withdraw); 0: never")
    rollout_window_s: float = Field(300.0, gt=0, description="a canary's error rate and p99 "
                                    "are judged over this many last seconds")
    # Inference log: a local write-ahead log, shipped to the database (README: "The inference
    # log" says what each failure can lose).
    log_inferences: bool = True
    log_dir: str = Field("var/inference-log", validation_alias=AliasChoices(
        "GATEWAY_LOG_DIR", "GATEWAY_SPOOL_DIR"), description="segments of the local log; keep "
        "it on a persistent volume (GATEWAY_SPOOL_DIR: its old name, deprecated)")
    log_fsync_ms: float = Field(200.0, gt=0, description="group fsync of the local log: at "
                                "most this much is lost if the machine (not the process) dies")
    log_required: bool = Field(False, description="answer 503 rather than serve a prediction "
                               "neither the local log nor the database could take")
    log_batch: int = Field(2000, ge=1, description="records per database write")
    log_ship_s: float = Field(0.5, gt=0, description="how often the shipper looks for records")
    log_retry_s: float = Field(1.0, gt=0, description="pause after the database failed")
    log_segment_bytes: int = Field(16 * 1024 * 1024, ge=4096)
    log_drain_s: float = Field(20.0, ge=0, description="at shutdown, keep shipping the log "
                               "this long while the database is down before leaving the rest "
                               "on disk")
    log_direct_max_bytes: int = Field(64 * 1024 * 1024, ge=4096, description="records waiting "
                                      "to be written to the database directly while the local "
                                      "log cannot be written; past it, dropped and counted")
    log_retention_days: int | None = Field(None, ge=1, description="drop raw inference rows "
                                           "(whole daily partitions) older than this; unset: keep")

    internal_token: SecretStr | None = _internal_token("GATEWAY_")

    def classifiers(self) -> list[str]:
        return [u.strip().rstrip("/") for u in self.classifier_urls.split(",") if u.strip()]

    def public_docs(self) -> bool:
        return self.docs if self.docs is not None else self.environment != "prod"

    @model_validator(mode="after")
    def _check_prod(self) -> GatewaySettings:
        if self.environment == "prod" and not self.auth:
            raise ValueError("GATEWAY_AUTH=false is refused when POLYHEAD_ENV=prod: without "
                             "keys every caller would get the admin scope")
        _check_internal_token(self.environment, self.internal_token)
        return self

    @model_validator(mode="after")
    def _warn_of_old_names(self) -> GatewaySettings:
        for old, new in DEPRECATED_GATEWAY_NAMES.items():
            if old in os.environ and new not in os.environ:
                log.warning("%s is deprecated and will go in a later release: call it %s",
                            old, new)
        return self

    @model_validator(mode="after")
    def _check_rate_limit(self) -> GatewaySettings:
        from limits import parse  # light; only the gateway needs it
        for name in ("rate_limit", "auth_failure_limit"):
            value = getattr(self, name)
            if value:
                try:
                    parse(value)
                except ValueError:
                    raise ValueError(f"{name} {value!r} is not like '100/second'") from None
        return self
