"""Settings for every service, read from the environment with pydantic-settings.

One class per service, each with its own env prefix (``EMBEDDER_``, ...). The few values that
are shared across the whole deployment (``POLYHEAD_ENV``, ``REDIS_URL``, ``LOG_LEVEL``...) can be
set once without a prefix and overridden per service with the prefixed name.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["dev", "test", "prod"]


def _env(prefix: str, name: str) -> AliasChoices:
    """Accept ``PREFIX_NAME`` first, then the deployment-wide ``NAME``."""
    return AliasChoices(f"{prefix}{name}", name)


class ServiceSettings(BaseSettings):
    """Fields every service has. Subclasses set ``env_prefix``."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    environment: Environment = Field("dev", validation_alias=AliasChoices("POLYHEAD_ENV"))
    log_level: str = Field("INFO", validation_alias=AliasChoices("LOG_LEVEL"))
    log_json: bool = Field(True, validation_alias=AliasChoices("LOG_JSON"))


class EmbedderSettings(ServiceSettings):
    """The central embedding service (``EMBEDDER_*``)."""

    model_config = SettingsConfigDict(env_prefix="EMBEDDER_", env_file=".env", extra="ignore",
                                      populate_by_name=True)

    # Model: a Hugging Face id, a local directory, or a model shipped as a Python package.
    model: str = "sentence-transformers/all-MiniLM-L6-v2"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"  # auto: fp16 on CUDA
    threads: int = Field(0, ge=0, description="CPU threads for torch; 0 = all cores")
    backend: Literal["torch", "fake"] = "torch"  # fake: hash vectors, for API-shape tests only
    # Padding-free forward passes: a batch's texts run as one packed sequence with
    # block-diagonal attention. auto = on CPU for BERT-family models (see bench/RESULTS.md).
    packing: Literal["auto", "on", "off"] = "auto"
    pack_tokens: int = Field(256, ge=16, description="tokens per packed forward pass")

    # Dynamic micro-batching.
    max_batch_size: int = Field(128, ge=1)
    max_batch_tokens: int = Field(16384, ge=16)
    max_wait_ms: float = Field(5.0, ge=0, description="under load, at most this wait to fill a batch")
    max_queue_texts: int = Field(8192, ge=1, description="texts waiting before we answer 429")

    # Input limits.
    max_texts_per_request: int = Field(2048, ge=1)
    max_chars_per_text: int = Field(8192, ge=1)
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)

    # Phrase cache: in-process LRU in front of Redis (Redis optional).
    lru_size: int = Field(50_000, ge=0)
    redis_url: str | None = Field(None, validation_alias=_env("EMBEDDER_", "REDIS_URL"))
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

    url: str = Field("http://127.0.0.1:8001", validation_alias=_env("EMBEDDER_CLIENT_", "EMBEDDER_URL"))
    timeout_s: float = Field(10.0, gt=0)
    connect_timeout_s: float = Field(2.0, gt=0)
    max_connections: int = Field(32, ge=1)
    retries: int = Field(2, ge=0)
    batch_size: int = Field(256, ge=1, description="texts per HTTP call for large inputs")
