"""Who may call what at the gateway: keys on every route, scopes, hashed keys, rate limits."""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select

from shared.db.models import ApiKey
from tests.conftest import RedisProcess, running
from tests.gateway.test_api import auth, gateway, stack  # noqa: F401 (fixture)

pytestmark = [pytest.mark.anyio, pytest.mark.model]
OPS = {"/health", "/ready", "/metrics"}
DOCS = {"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}


def calls(app: Any) -> list[tuple[str, str]]:
    """Every (method, path) of the app's API, path parameters filled in, plus the ops routes.
    (``app.openapi()`` works even when the app serves no /openapi.json.)"""
    out = [("GET", path) for path in sorted(OPS)]
    for path, operations in app.openapi()["paths"].items():
        out += [(m.upper(), re.sub(r"\{[^}]+\}", "x", path)) for m in operations]
    return sorted(set(out))


async def test_every_route_but_health_ready_metrics_needs_a_key(stack: dict[str, Any]) -> None:
    app = gateway(stack, docs=False)  # POLYHEAD_ENV=prod turns docs off the same way
    async with (LifespanManager(app) as manager,
                AsyncClient(transport=ASGITransport(manager.app), base_url="http://gw") as c):
        routes = calls(app)
        assert len(routes) >= 12 and not {p for _, p in routes} & DOCS
        for method, path in routes:
            response = await c.request(method, path, json={})
            if path in OPS:
                assert response.status_code != 401, path
            else:
                assert response.status_code == 401, (method, path, response.text)
        for path in DOCS:
            assert (await c.get(path)).status_code == 404, path
    async with running(gateway(stack)) as client:  # dev/test default: the docs are public
        assert (await client.get("/openapi.json")).status_code == 200


async def test_predict_keys_cannot_train_promote_roll_back_or_read_reports(
        stack: dict[str, Any]) -> None:
    headers = auth(stack["predict"])
    admin_routes = [("POST", "/v1/jobs"), ("GET", "/v1/jobs"), ("GET", "/v1/jobs/x"),
                    ("POST", "/v1/jobs/feedback"), ("POST", "/v1/models/intents/promote"),
                    ("POST", "/v1/models/intents/rollback"), ("GET", "/v1/reports/models/intents")]
    async with running(gateway(stack)) as client:
        for method, path in admin_routes:
            response = await client.request(method, path, json={"version": 1}, headers=headers)
            assert response.status_code == 403, (method, path, response.text)
            assert "lacks the 'admin' scope" in response.json()["error"]["message"]
        # and the admin key may not predict: scopes are not a hierarchy
        predict = await client.post("/v1/models/intents/predict", json={"text": "hi"},
                                    headers=auth(stack["admin"]))
        assert predict.status_code == 403


async def test_keys_are_stored_hashed(stack: dict[str, Any]) -> None:
    """Only the SHA-256 is stored (what a key is looked up by: tests/security/
    test_auth_failures.py shows that only the exact key authenticates)."""
    with stack["engine"].connect() as c:
        rows = c.execute(select(ApiKey)).all()
    stored = " ".join(str(value) for row in rows for value in row)
    assert stack["predict"] not in stored and stack["predict"][3:] not in stored
    assert hashlib.sha256(stack["predict"].encode()).hexdigest() in {r.key_hash for r in rows}


async def test_per_key_rate_limits_answer_429(stack: dict[str, Any]) -> None:
    limited = stack["keys"].create(f"limited-{uuid.uuid4().hex[:6]}", ["predict"], "3/minute")
    async with running(gateway(stack, rate_limit="100/minute")) as client:
        answers = [await client.get("/v1/models", headers=auth(limited)) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert "rate limit exceeded" in answers[-1].json()["error"]["message"]
        assert 1 <= int(answers[-1].headers["retry-after"]) <= 60
        # other keys have their own counters (and the gateway-wide default)
        assert (await client.get("/v1/models", headers=auth(stack["predict"]))).status_code == 200
    with pytest.raises(ValueError, match="not like"):
        stack["keys"].create("bad-limit", ["predict"], "lots")


async def test_rate_limits_are_shared_through_redis_and_fail_open(
        stack: dict[str, Any], private_redis: RedisProcess) -> None:
    """Two gateways count one key together; with Redis gone, requests pass (logged)."""
    key = stack["keys"].create(f"shared-{uuid.uuid4().hex[:6]}", ["predict"], "4/minute")
    one = gateway(stack, redis_url=private_redis.url)
    two = gateway(stack, redis_url=private_redis.url)
    async with running(one) as a, running(two) as b:
        statuses = [(await c.get("/v1/models", headers=auth(key))).status_code
                    for c in (a, b, a, b, a)]
        assert statuses == [200, 200, 200, 200, 429]
        private_redis.stop()
        assert (await b.get("/v1/models", headers=auth(key))).status_code == 200
