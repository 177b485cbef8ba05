"""API keys: what the event loop may answer without the database (a key fresh in the cache,
with the scope asked for), and everything else left to ``authenticate``."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from services.gateway.auth import Client, KeyStore, UnknownKey
from services.gateway.ratelimit import RateLimits
from shared.db import session_factory


@pytest.fixture
def keys(migrated_engine: Engine) -> KeyStore:
    return KeyStore(session_factory(migrated_engine))


def test_a_key_is_known_once_looked_up_and_only_with_its_scope(keys: KeyStore) -> None:
    key = keys.create("app", ["predict"])
    bearer = f"Bearer {key}"
    assert keys.known(bearer, "predict") is None  # never looked up: the database decides
    assert keys.authenticate(bearer, "predict").name == "app"
    assert keys.known(bearer, "predict") == Client("app", frozenset({"predict"}))
    assert keys.known(bearer, None) is not None
    assert keys.known(bearer, "admin") is None  # authenticate says why (403)
    assert keys.known(None, "predict") is None and keys.known("Basic abc", None) is None


def test_an_unknown_or_revoked_or_stale_key_is_never_known(migrated_engine: Engine) -> None:
    keys = KeyStore(session_factory(migrated_engine))
    with pytest.raises(UnknownKey):
        keys.authenticate("Bearer ph_nothing", None)
    assert keys.known("Bearer ph_nothing", None) is None  # a failure, counted in a thread
    key = keys.create("app", ["predict"])
    keys.authenticate(f"Bearer {key}", None)
    keys.revoke("app")
    assert keys.known(f"Bearer {key}", None) is None
    stale = KeyStore(session_factory(migrated_engine), ttl_s=0)
    other = stale.create("other", ["predict"])
    stale.authenticate(f"Bearer {other}", None)
    assert stale.known(f"Bearer {other}", None) is None


def test_counting_needs_no_io_without_limits_or_in_memory() -> None:
    plain, limited = Client("a", frozenset({"predict"})), Client("b", frozenset(), "5/second")
    assert RateLimits(None).counts_in_memory(plain)
    assert RateLimits(None).counts_in_memory(limited)  # counted in this process
    assert RateLimits(None, "redis://127.0.0.1:6379/0").counts_in_memory(plain)
    assert not RateLimits(None, "redis://127.0.0.1:6379/0").counts_in_memory(limited)
    assert not RateLimits("100/second", "redis://127.0.0.1:6379/0").counts_in_memory(plain)
