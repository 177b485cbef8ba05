"""Guessing keys at the gateway: failed authentications are limited per client address (429
with Retry-After), a valid key is never refused for them, and only the exact key works."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import Engine, event

from services.gateway.app import create_app
from services.gateway.auth import KeyStore, hash_key
from shared.db import make_engine, session_factory
from shared.db.migrate import upgrade
from shared.settings import GatewaySettings
from tests.conftest import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
def keys(pg_url: str) -> Iterator[KeyStore]:
    engine = make_engine(pg_url)
    upgrade(engine)
    yield KeyStore(session_factory(engine))
    engine.dispose()


def gateway(pg_url: str, tmp_path: Path, **overrides: Any) -> FastAPI:
    values: dict[str, Any] = {
        "database_url": pg_url, "classifier_urls": f"http://127.0.0.1:{free_port()}",
        "log_json": False, "environment": "test", "log_dir": str(tmp_path / "log")}
    return create_app(GatewaySettings(**(values | overrides)))


@asynccontextmanager
async def clients(app: FastAPI, *addresses: str) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One HTTP client per client address, all talking to the started app in-process."""
    async with LifespanManager(app) as manager:
        made = [httpx.AsyncClient(transport=httpx.ASGITransport(manager.app, client=(a, 4000)),
                                  base_url="http://gw") for a in addresses]
        try:
            yield made
        finally:
            for client in made:
                await client.aclose()


class KeyQueries:
    """Counts the SQL statements that read the api_keys table, on every engine."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "api_keys" in statement and statement.lstrip().upper().startswith("SELECT"):
            self.count += 1


@pytest.fixture
def key_queries() -> Iterator[KeyQueries]:
    queries = KeyQueries()
    event.listen(Engine, "before_cursor_execute", queries)
    yield queries
    event.remove(Engine, "before_cursor_execute", queries)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_failed_authentications_are_limited_per_address(
        pg_url: str, tmp_path: Path, keys: KeyStore, key_queries: KeyQueries) -> None:
    good = keys.create(f"app-{uuid.uuid4().hex[:6]}", ["predict"])
    fresh = keys.create(f"late-{uuid.uuid4().hex[:6]}", ["predict"])
    app = gateway(pg_url, tmp_path, auth_failure_limit="3/minute")
    async with clients(app, "203.0.113.7", "198.51.100.2") as (guesser, other):
        assert (await guesser.get("/v1/models", headers=bearer(good))).status_code == 200
        guesses = [await guesser.get("/v1/models", headers=bearer(f"ph_{uuid.uuid4().hex}"))
                   for _ in range(3)]
        assert [g.status_code for g in guesses] == [401, 401, 401]
        over = [await guesser.get("/v1/models", headers=bearer(f"ph_{uuid.uuid4().hex}"))
                for _ in range(5)]
        assert {o.status_code for o in over} == {429}
        assert 1 <= int(over[0].headers["retry-after"]) <= 60
        assert "too many failed authentications" in over[0].json()["error"]["message"]
        # A valid key is never refused for what was sent before, not even from that address:
        # an unseen one costs one lookup, a known one none.
        before = key_queries.count
        assert (await guesser.get("/v1/models", headers=bearer(fresh))).status_code == 200
        assert key_queries.count == before + 1
        assert (await guesser.get("/v1/models", headers=bearer(good))).status_code == 200
        assert (await guesser.get("/v1/models", headers=bearer(fresh))).status_code == 200
        assert key_queries.count == before + 1
        # A repeated unknown key is answered from the cache: no query either.
        repeated = f"ph_{uuid.uuid4().hex}"
        await guesser.get("/v1/models", headers=bearer(repeated))
        before = key_queries.count
        assert (await guesser.get("/v1/models", headers=bearer(repeated))).status_code == 429
        assert key_queries.count == before
        # Other addresses are not affected, and a missing key is not a guess.
        assert (await other.get("/v1/models", headers=bearer(f"ph_{uuid.uuid4().hex}"))
                ).status_code == 401
        assert (await other.get("/v1/models")).status_code == 401
        for _ in range(5):
            assert (await guesser.get("/v1/models")).status_code == 401


async def test_only_the_exact_key_authenticates(pg_url: str, tmp_path: Path,
                                                keys: KeyStore) -> None:
    """Keys are looked up by their SHA-256: a near miss, the stored hash itself, or the key with
    something added are all unknown keys; a revoked key stops working."""
    name = f"app-{uuid.uuid4().hex[:6]}"
    key = keys.create(name, ["predict"])
    flipped = key[:-1] + ("A" if key[-1] != "A" else "B")
    async with clients(gateway(pg_url, tmp_path, auth_failure_limit=None), "192.0.2.1") as (c,):
        assert (await c.get("/v1/models", headers=bearer(key))).status_code == 200
        for wrong in (flipped, key + "x", key[:-1], hash_key(key), key.upper()):
            answer = await c.get("/v1/models", headers=bearer(wrong))
            assert answer.status_code == 401, wrong
            assert answer.json()["error"]["message"] == "unknown or revoked API key"
    assert keys.revoke(name)
    async with clients(gateway(pg_url, tmp_path, auth_failure_limit=None), "192.0.2.1") as (c,):
        assert (await c.get("/v1/models", headers=bearer(key))).status_code == 401
