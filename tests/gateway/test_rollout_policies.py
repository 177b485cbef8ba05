"""Rollout policies end to end: real embedder, a classifier replica over real HTTP, real
PostgreSQL, the gateway's own rollout watcher. A canary whose head cannot load is withdrawn
by the watcher while production answers every request, and the history says why."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from services.gateway.app import create_app
from shared.db.models import AliasEvent
from shared.settings import GatewaySettings
from tests.conftest import running
from tests.gateway.test_rollout import TEXTS, stack  # noqa: F401 - the fixture

pytestmark = [pytest.mark.anyio, pytest.mark.model]


async def test_a_canary_that_cannot_load_is_withdrawn(stack: dict[str, Any],
                                                      tmp_path: Path) -> None:
    shutil.rmtree(tmp_path / "artifacts" / "intents" / "4")  # v4's head is lost
    app = create_app(GatewaySettings(
        database_url=stack["db"], log_json=False, environment="test",
        log_dir=str(stack["log_dir"]), classifier_urls=stack["classifier"],
        rollout_check_s=0.2, rollout_window_s=60))
    url = "/v1/models/intents/candidate"
    async with running(app) as client:
        policy = {"max_error_rate": 0.05, "max_p99_ms": 2000}
        put = await client.put(url, headers=stack["admin"], json={
            "version": 4, "mode": "canary", "share": 1.0, "policy": policy, "reason": "v4"})
        assert put.status_code == 200, put.text
        assert put.json()["candidate"]["policy"] | policy == put.json()["candidate"]["policy"]
        for _ in range(100):
            answer = await client.post("/v1/models/intents/predict", headers=stack["predict"],
                                       json={"texts": TEXTS})
            assert answer.status_code == 200, answer.text
            assert (answer.json()["version"], answer.json()["role"]) == (1, "production")
            info = (await client.get("/v1/models/intents", headers=stack["predict"])).json()
            if info["candidate"] is None:
                break
            await asyncio.sleep(0.1)
        assert info["candidate"] is None, "the watcher never withdrew the canary"
    with stack["engine"].connect() as c:
        last = c.execute(select(AliasEvent.alias, AliasEvent.from_version, AliasEvent.to_version,
                                AliasEvent.action, AliasEvent.actor, AliasEvent.reason)
                         .order_by(AliasEvent.id.desc()).limit(2)).all()
    assert [tuple(e) for e in last] == [
        ("candidate", 4, None, "withdraw", "rollout-watch", "policy: its head failed to load"),
        ("candidate", None, 4, "canary", "ops",
         "share 1, policy max_error_rate 0.05, max_p99_ms 2000; v4")]
