from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.settings import EmbedderClientSettings, EmbedderSettings


def test_defaults_are_the_embedded_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_URL", "EMBEDDER_REDIS_URL", "EMBEDDER_MODEL"):
        monkeypatch.delenv(name, raising=False)
    s = EmbedderSettings(_env_file=None)
    assert s.model == "sentence-transformers/all-MiniLM-L6-v2"
    assert s.redis_url is None and s.lru_size == 50_000


def test_prefixed_name_wins_over_the_deployment_wide_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://shared:6379/0")
    assert EmbedderSettings().redis_url == "redis://shared:6379/0"
    monkeypatch.setenv("EMBEDDER_REDIS_URL", "redis://mine:6379/1")
    monkeypatch.setenv("EMBEDDER_MAX_BATCH_SIZE", "64")
    s = EmbedderSettings()
    assert (s.redis_url, s.max_batch_size) == ("redis://mine:6379/1", 64)
    monkeypatch.setenv("EMBEDDER_URL", "http://embedder:8001")
    assert EmbedderClientSettings().url == "http://embedder:8001"


def test_nonsense_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDDER_MAX_BATCH_SIZE", "0")
    with pytest.raises(ValidationError):
        EmbedderSettings()
    monkeypatch.setenv("EMBEDDER_MAX_BATCH_SIZE", "64")
    monkeypatch.setenv("EMBEDDER_MAX_BATCH_TOKENS", "32")
    with pytest.raises(ValidationError, match="max_batch_tokens"):
        EmbedderSettings()
