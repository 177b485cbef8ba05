"""Classifier heads served from the registry: real embedder, real PostgreSQL, real heads.

Covers the full path (clean, embed, head), hot reload on promotion and rollback while
requests are in flight, input limits, an embedder mismatch and a dead embedder (circuit
breaker: fast 503 with a clear message).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from services.classifier.app import create_app
from shared.clients.embedder import AsyncEmbedderClient
from shared.db import make_engine, session_factory
from shared.registry import Registry
from shared.settings import ClassifierSettings, EmbedderClientSettings
from tests.classifier.helpers import MODEL, publish
from tests.conftest import clinc_rows, free_port, running

pytestmark = pytest.mark.anyio


def app_for(db_url: str, tmp_path: Path, embedder_url: str, **overrides: Any) -> Any:
    values: dict[str, Any] = {"database_url": db_url, "artifact_store": str(tmp_path),
                              "reload_interval_s": 0.2, "log_json": False,
                              "environment": "test"}
    values.update(overrides)
    client = AsyncEmbedderClient(EmbedderClientSettings(url=embedder_url, retries=0,
                                                        breaker_threshold=2, breaker_ttl_s=30))
    return create_app(ClassifierSettings(**values), embedder=client)


@pytest.mark.model
async def test_a_format_3_head_and_a_features_head_serve_side_by_side(
        pg_url: str, tmp_path: Path, embedder_url: str) -> None:
    """A head saved before features (format 3, sentence vectors) and one on sentence+lexical
    rows (format 4) answer from the same features call: each takes the part it was trained on."""
    intents = clinc_rows(labels=4, per_label=20)
    publish(pg_url, tmp_path, "old", intents, embedder_url, format_3=True)
    publish(pg_url, tmp_path, "new", intents, embedder_url)
    tests = clinc_rows("test.csv", labels=4, per_label=3)
    async with running(app_for(pg_url, tmp_path, embedder_url)) as client:
        for name in ("old", "new"):
            response = await client.post(f"/v1/classify/{name}",
                                         json={"texts": [t for t, _ in tests]})
            assert response.status_code == 200, response.text
            labels = [p["label"] for p in response.json()["predictions"]]
            assert sum(a == b for a, (_, b) in zip(labels, tests, strict=True)) >= 11, name


@pytest.mark.model
async def test_classify_and_hot_reload(pg_url: str, tmp_path: Path, embedder_url: str) -> None:
    intents = clinc_rows(labels=4, per_label=20)
    publish(pg_url, tmp_path, "intents", intents, embedder_url)
    async with running(app_for(pg_url, tmp_path, embedder_url)) as client:
        text, label = clinc_rows("test.csv", labels=4, per_label=1)[0]
        response = await client.post("/v1/classify/intents",
                                     json={"texts": [f"  {text} ", text], "top_k": 2})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model"] == "intents" and body["version"] == 1 and body["head_type"] == "logreg"
        first, second = body["predictions"]
        assert first["label"] == label and len(first["top"]) == 2 and not first["abstained"]
        assert first["probability"] == second["probability"]  # same text after cleaning
        assert body["embedder_model"] == MODEL and body["timings"]["total_ms"] > 0

        # Promote a new version (other labels) while requests keep coming: none fails, and
        # the new version answers within a few reload intervals.
        other = clinc_rows(labels=8, per_label=20)[80:]
        statuses: list[int] = []
        versions: set[int] = set()

        async def traffic() -> None:
            for _ in range(60):
                r = await client.post("/v1/classify/intents", json={"texts": [text]})
                statuses.append(r.status_code)
                versions.add(r.json().get("version", 0))
                await asyncio.sleep(0.02)

        load = asyncio.create_task(traffic())
        await asyncio.to_thread(publish, pg_url, tmp_path, "intents", other, embedder_url)
        await load
        assert set(statuses) == {200} and versions == {1, 2}
        new_labels = {label for _, label in other}
        assert (await client.post("/v1/classify/intents", json={"texts": [text]})
                ).json()["predictions"][0]["label"] in new_labels

        engine = make_engine(pg_url)
        Registry(session_factory(engine)).rollback("intents")
        engine.dispose()
        for _ in range(50):
            if (await client.post("/v1/classify/intents",
                                  json={"texts": [text]})).json()["version"] == 1:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("rollback not picked up")
        heads = (await client.get("/v1/heads")).json()["data"]
        assert [(h["model"], h["version"]) for h in heads] == [("intents", 1)]


@pytest.mark.model
async def test_input_limits_and_unknown_models(tmp_path: Path, embedder_url: str) -> None:
    db = f"sqlite:///{tmp_path}/db.sqlite"
    publish(db, tmp_path, "intents", clinc_rows(labels=2, per_label=10), None)
    async with running(app_for(db, tmp_path, embedder_url, max_texts_per_request=3,
                               max_chars_per_text=50)) as client:
        cases = [("/v1/classify/nope", {"texts": ["hi"]}, 404, "models served here: intents"),
                 ("/v1/classify/intents", {"texts": []}, 422, "texts"),
                 ("/v1/classify/intents", {"texts": ["a", 3]}, 422,
                  "texts[1] must be a string, not int"),
                 ("/v1/classify/intents", {"texts": ["ok", "   "]}, 422, "texts[1] is empty"),
                 ("/v1/classify/intents", {"texts": ["a"] * 4}, 422, "the limit is 3"),
                 ("/v1/classify/intents", {"texts": ["x" * 51]}, 422, "51 characters"),
                 ("/v1/classify/intents", {"text": "wrong field"}, 422, "texts")]
        for path, body, status, message in cases:
            response = await client.post(path, json=body)
            assert response.status_code == status, (body, response.text)
            assert message in response.json()["error"]["message"], response.text


@pytest.mark.model
async def test_head_from_another_embedder_is_refused(tmp_path: Path, embedder_url: str) -> None:
    db = f"sqlite:///{tmp_path}/db.sqlite"
    publish(db, tmp_path, "intents", clinc_rows(labels=2, per_label=10), None,
            embedder_model="some/other-model")
    async with running(app_for(db, tmp_path, embedder_url)) as client:
        response = await client.post("/v1/classify/intents", json={"texts": ["hello"]})
        assert response.status_code == 503
        assert "trained on embeddings of some/other-model" in response.json()["error"]["message"]


async def test_dead_embedder_trips_the_circuit_breaker(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/db.sqlite"
    publish(db, tmp_path, "intents", clinc_rows(labels=2, per_label=10), None)
    dead = f"http://127.0.0.1:{free_port()}"
    async with running(app_for(db, tmp_path, dead)) as client:
        messages = []
        for _ in range(4):
            response = await client.post("/v1/classify/intents", json={"texts": ["hello"]})
            assert response.status_code == 503 and "retry-after" in response.headers
            messages.append(response.json()["error"]["message"])
        assert "unreachable" in messages[0] and "unreachable" in messages[1]
        assert all("failing fast" in m for m in messages[2:])
