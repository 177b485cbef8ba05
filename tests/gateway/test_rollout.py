"""Rollouts through the public API, end to end: real embedder, a classifier replica over real
HTTP, real PostgreSQL. A shadow logs one shadow row per production row and never answers; a
canary answers its share of callers, each always the same side; pinned versions; refusals that
leave the running configuration untouched; the alias history; the CLI."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from services.classifier.app import create_app as create_classifier
from services.classifier.routing import in_share
from services.gateway.app import create_app
from services.gateway.auth import KeyStore
from shared.clients.embedder import AsyncEmbedderClient
from shared.db import make_engine, session_factory
from shared.db.models import AliasEvent, Inference, InferenceRollup
from shared.settings import ClassifierSettings, EmbedderClientSettings, GatewaySettings
from tests.classifier.helpers import publish
from tests.conftest import ServerThread, clinc_rows, running

pytestmark = [pytest.mark.anyio, pytest.mark.model]
V1_ROWS = clinc_rows(labels=4, per_label=20)
V2_ROWS = clinc_rows(labels=8, per_label=20)[80:]  # four other intents
TEXTS = [t for t, _ in clinc_rows("test.csv", labels=8, per_label=1)][:4]


@pytest.fixture
def stack(pg_url: str, tmp_path: Path, embedder_url: str) -> Iterator[dict[str, Any]]:
    """``intents`` v1 in production; v2 (other labels) and v4 not; v3 on another embedder;
    a classifier replica; API keys. The gateway is per test."""
    store = tmp_path / "artifacts"
    publish(pg_url, store, "intents", V1_ROWS, embedder_url)
    publish(pg_url, store, "intents", V2_ROWS, embedder_url, promote=False)
    publish(pg_url, store, "intents", V1_ROWS, None, embedder_model="other", promote=False)
    publish(pg_url, store, "intents", V1_ROWS[::2], embedder_url, promote=False)
    engine = make_engine(pg_url)
    keys = KeyStore(session_factory(engine))
    classifier = create_classifier(
        ClassifierSettings(database_url=pg_url, artifact_store=str(store), log_json=False,
                           reload_interval_s=0.1, environment="test"),
        embedder=AsyncEmbedderClient(EmbedderClientSettings(url=embedder_url)))
    with ServerThread(classifier) as server:
        yield {"engine": engine, "db": pg_url, "classifier": server.url,
               "predict": {"Authorization": f"Bearer {keys.create('app', ['predict'])}"},
               "admin": {"Authorization": f"Bearer {keys.create('ops', ['admin'])}"},
               "admin_key": keys.create("ops2", ["admin"]),
               "log_dir": tmp_path / "inference-log"}
    engine.dispose()


def gateway(stack: dict[str, Any]) -> Any:
    return create_app(GatewaySettings(database_url=stack["db"], log_json=False,
                                      environment="test", log_dir=str(stack["log_dir"]),
                                      classifier_urls=stack["classifier"], log_retry_s=0.3))


async def loaded(stack: dict[str, Any], candidate: dict[str, Any] | None) -> None:
    """Wait until the classifier serves ``candidate`` beside production."""
    async with httpx.AsyncClient() as http:
        for _ in range(200):
            heads = (await http.get(f"{stack['classifier']}/v1/heads")).json()["data"]
            if heads and heads[0]["candidate"] == candidate:
                return
            await asyncio.sleep(0.05)
    raise AssertionError(f"the classifier never loaded {candidate}")


def rows(stack: dict[str, Any], expected: int) -> list[Any]:
    """The logged rows, once there are ``expected`` of them (the log ships in the background)."""
    for _ in range(200):
        with stack["engine"].connect() as c:
            found = c.execute(select(Inference).order_by(Inference.created_at)).all()
        if len(found) >= expected:
            return list(found)
        time.sleep(0.05)
    raise AssertionError(f"{len(found)} rows logged, not {expected}")


async def test_a_shadow_logs_one_row_per_production_row_and_never_answers(
        stack: dict[str, Any]) -> None:
    async with running(gateway(stack)) as client:
        put = await client.put("/v1/models/intents/candidate", headers=stack["admin"],
                               json={"version": 2, "mode": "shadow"})
        assert put.status_code == 200, put.text
        shadow = {"version": 2, "mode": "shadow", "share": 1.0, "policy": None}
        assert put.json()["candidate"] == shadow
        info = await client.get("/v1/models/intents", headers=stack["predict"])
        assert info.json()["candidate"] == shadow
        await loaded(stack, shadow)
        v1_labels = {label for _, label in V1_ROWS}
        for _ in range(5):
            answer = await client.post("/v1/models/intents/predict", headers=stack["predict"],
                                       json={"texts": TEXTS})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert (body["version"], body["role"]) == (1, "production")
            assert set(body) == {"model", "version", "role", "predictions"}
            assert {p["label"] for p in body["predictions"]} <= v1_labels

    logged = rows(stack, 40)
    production = {r.id: r for r in logged if r.role == "production"}
    shadows = [r for r in logged if r.role == "shadow"]
    assert len(production) == len(shadows) == 20
    assert {r.shadow_of for r in shadows} == set(production)  # one each
    for row in shadows:
        mirrored = production[row.shadow_of]
        assert (row.model_version, row.input_text, row.client, row.request_id) == (
            2, mirrored.input_text, mirrored.client, mirrored.request_id)
        assert row.label in {label for _, label in V2_ROWS} and row.total_ms is None
    with stack["engine"].connect() as c:  # the rollups count production's rows only
        counted = c.execute(select(InferenceRollup.model_version,
                                   func.sum(InferenceRollup.inferences))
                            .group_by(InferenceRollup.model_version)).all()
    assert [tuple(r) for r in counted] == [(1, 20)]


async def test_canary_pinned_and_unknown_versions(stack: dict[str, Any]) -> None:
    async with running(gateway(stack)) as client:
        put = await client.put("/v1/models/intents/candidate", headers=stack["admin"],
                               json={"version": 2, "mode": "canary", "share": 0.5})
        assert put.status_code == 200, put.text
        await loaded(stack, {"version": 2, "mode": "canary", "share": 0.5, "policy": None})
        keys = [f"user-{i}" for i in range(20)]
        for _ in range(2):  # sticky: the same side both times
            for key in keys:
                body = (await client.post("/v1/models/intents/predict",
                                          headers=stack["predict"],
                                          json={"text": TEXTS[0], "routing_key": key})).json()
                assert (body["version"], body["role"]) == (
                    (2, "canary") if in_share("intents", key, 0.5) else (1, "production"))
        by_key = (await client.post("/v1/models/intents/predict", headers=stack["predict"],
                                    json={"text": TEXTS[0]})).json()  # the API key's name
        assert by_key["role"] == ("canary" if in_share("intents", "app", 0.5) else "production")

        pinned = await client.post("/v1/models/intents/predict", headers=stack["predict"],
                                   json={"text": TEXTS[0], "version": 4})
        assert (pinned.json()["version"], pinned.json()["role"]) == (4, "pinned")
        unknown = await client.post("/v1/models/intents/predict", headers=stack["predict"],
                                    json={"text": TEXTS[0], "version": 9})
        assert unknown.status_code == 404
        assert "no version 9; versions: [1, 2, 3, 4]" in unknown.json()["error"]["message"]

    logged = rows(stack, 42)
    roles = {(r.role, r.model_version) for r in logged}
    assert ("pinned", 4) in roles and ("canary", 2) in roles and ("production", 1) in roles
    assert not any(r.role == "shadow" for r in logged)


async def test_bad_candidates_are_refused_and_the_history_is_kept(
        stack: dict[str, Any]) -> None:
    url = "/v1/models/intents/candidate"
    async with running(gateway(stack)) as client:
        running_one = {"version": 2, "mode": "shadow", "share": 0.2, "policy": None}
        assert (await client.put(url, headers=stack["admin"], json=running_one)
                ).status_code == 200
        refused = [
            ("/v1/models/nope/candidate", {"version": 2, "mode": "shadow"}, 404, "unknown model"),
            (url, {"version": 9, "mode": "shadow"}, 404, "versions: [1, 2, 3, 4]"),
            (url, {"version": 4, "mode": "shadow", "share": 1.5}, 422, "share"),
            (url, {"version": 4, "mode": "canary", "share": 0}, 422, "share"),
            (url, {"version": 4, "mode": "canary"}, 422, "a canary needs a share"),
            (url, {"version": 4, "mode": "blue"}, 422, "mode"),
            (url, {"version": 3, "mode": "shadow"}, 409, "trained on other"),
            (url, {"version": 1, "mode": "canary", "share": 0.1}, 409, "already production"),
            (url, {"version": 4, "mode": "canary", "share": 0.1}, 409, "withdraw it first"),
        ]
        for path, body, status, words in refused:
            answer = await client.put(path, headers=stack["admin"], json=body)
            assert answer.status_code == status, (body, answer.text)
            assert words in answer.json()["error"]["message"], answer.text
        assert (await client.put(url, headers=stack["predict"], json=running_one)
                ).status_code == 403
        info = (await client.get("/v1/models/intents", headers=stack["predict"])).json()
        assert info["candidate"] == running_one

        withdrawn = await client.request("DELETE", url, headers=stack["admin"],
                                         json={"reason": "seen enough"})
        assert withdrawn.json()["action"] == "withdraw"
        assert (await client.delete(url, headers=stack["admin"])).json()["action"] == "unchanged"
        await client.put(url, headers=stack["admin"],
                         json={"version": 4, "mode": "canary", "share": 0.1})
        promoted = await client.post("/v1/models/intents/promote", headers=stack["admin"],
                                     json={"version": 4})
        assert promoted.json()["to_version"] == 4
        info = (await client.get("/v1/models/intents", headers=stack["predict"])).json()
        assert (info["production_version"], info["candidate"]) == (4, None)

    with stack["engine"].connect() as c:
        history = [tuple(e) for e in c.execute(
            select(AliasEvent.alias, AliasEvent.from_version, AliasEvent.to_version,
                   AliasEvent.action, AliasEvent.actor, AliasEvent.reason)
            .order_by(AliasEvent.id))]
    assert history == [
        ("production", None, 1, "promote", "system", ""),
        ("candidate", None, 2, "shadow", "ops", "share 0.2"),
        ("candidate", 2, None, "withdraw", "ops", "seen enough"),
        ("candidate", None, 4, "canary", "ops", "share 0.1"),
        ("production", 1, 4, "promote", "ops", ""),
        ("candidate", 4, None, "withdraw", "ops", "promote to production"),
    ]


def polyhead(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_the_cli_sets_and_withdraws(stack: dict[str, Any]) -> None:
    with ServerThread(gateway(stack)) as server:
        common = ["--gateway", server.url, "--key", stack["admin_key"]]
        shadow = polyhead("shadow", "intents", "2", "--share", "0.2", *common)
        assert (shadow.returncode, shadow.stdout) == (
            0, "intents: candidate v2 shadow share 0.2 (was none)\n")
        second = polyhead("canary", "intents", "4", "--weight", "0.1", *common)
        assert second.returncode == 1
        assert "409: model 'intents' already has a candidate" in second.stderr
        ramp = polyhead("canary", "intents", "2", "--weight", "0.1", *common)
        assert (ramp.returncode, ramp.stdout) == (
            0, "intents: candidate v2 canary share 0.1 (was v2 shadow share 0.2)\n")
        withdraw = polyhead("withdraw", "intents", "--reason", "done", *common)
        assert (withdraw.returncode, withdraw.stdout) == (
            0, "intents: withdrew v2 canary share 0.1; production answers everything\n")
        ruled = polyhead("shadow", "intents", "2", "--promote-after", "200", "--margin", "0.01",
                         *common)
        assert (ruled.returncode, ruled.stdout) == (0, "intents: candidate v2 shadow share 1, "
                                                    "policy promote_after 200, margin 0.01 "
                                                    "(was none)\n")
        compared = polyhead("compare", "intents", *common)
        assert compared.returncode == 0, compared.stderr
        assert compared.stdout.startswith("intents: production vs v2 (shadow), ")
        assert "accuracy on feedback" in compared.stdout and "n/a (0 rows)" in compared.stdout
        assert polyhead("compare", "intents", "--from", "2026-01-01T00:00:00Z", "--to",
                        "2026-02-01T00:00:00Z", *common).stderr.startswith(
            "polyhead: 422: the window is at most 7 days")
