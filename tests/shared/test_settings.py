from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from shared.settings import (
    ClassifierSettings,
    EmbedderClientSettings,
    EmbedderSettings,
    GatewaySettings,
    TrainerSettings,
)


def test_defaults_are_the_embedded_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_URL", "EMBEDDER_REDIS_URL", "EMBEDDER_MODEL"):
        monkeypatch.delenv(name, raising=False)
    s = EmbedderSettings(_env_file=None)
    assert s.model == "sentence-transformers/all-MiniLM-L6-v2"
    assert s.redis_url is None and s.lru_size == 50_000


def test_prefixed_name_wins_over_the_deployment_wide_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://shared:6379/0")
    assert _plain(EmbedderSettings().redis_url) == "redis://shared:6379/0"
    monkeypatch.setenv("EMBEDDER_REDIS_URL", "redis://mine:6379/1")
    monkeypatch.setenv("EMBEDDER_MAX_BATCH_SIZE", "64")
    s = EmbedderSettings()
    assert (_plain(s.redis_url), s.max_batch_size) == ("redis://mine:6379/1", 64)
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


def _plain(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def test_urls_that_may_hold_a_password_never_print_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A settings object in a log line or a traceback shows no database or Redis password."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://polyhead:hunter2@db/polyhead")
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2@cache:6379/0")
    for settings in (GatewaySettings(), TrainerSettings(), ClassifierSettings(),
                     EmbedderSettings()):
        assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)
    assert _plain(GatewaySettings().database_url) == "postgresql://polyhead:hunter2@db/polyhead"


def test_an_old_name_still_works_and_says_it_is_deprecated(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("GATEWAY_SPOOL_DIR", "/data/log")
    monkeypatch.delenv("GATEWAY_LOG_DIR", raising=False)
    with caplog.at_level("WARNING", logger="shared.settings"):
        assert GatewaySettings().log_dir == "/data/log"
    assert "GATEWAY_SPOOL_DIR is deprecated" in caplog.text and "GATEWAY_LOG_DIR" in caplog.text
    caplog.clear()
    monkeypatch.delenv("GATEWAY_SPOOL_DIR")
    with caplog.at_level("WARNING", logger="shared.settings"):
        GatewaySettings()
    assert "deprecated" not in caplog.text
