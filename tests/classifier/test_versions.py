"""Several versions of a model in one classifier: pinned versions, a shadow on the same
embedding, a sticky canary, a candidate that fails to load; real embedder, real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.classifier.app import create_app
from services.classifier.routing import in_share
from shared.clients.embedder import AsyncEmbedderClient, Embeddings
from shared.contracts.rollout import Candidate
from shared.db import make_engine, session_factory
from shared.registry import Registry
from shared.settings import ClassifierSettings, EmbedderClientSettings
from tests.classifier.helpers import MODEL, publish
from tests.classifier.test_metrics import value
from tests.conftest import clinc_rows, running

pytestmark = [pytest.mark.anyio, pytest.mark.model]
V1_ROWS = clinc_rows(labels=4, per_label=20)
V2_ROWS = clinc_rows(labels=8, per_label=20)[80:]  # four other intents
TEXTS = [t for t, _ in clinc_rows("test.csv", labels=8, per_label=1)]


class CountingEmbedder(AsyncEmbedderClient):
    """The real client, counting its calls (one per request, shadow or not)."""

    calls = 0

    async def features(self, texts: list[str]) -> Embeddings:
        self.calls += 1
        return await super().features(texts)


@pytest.fixture
def model(pg_url: str, tmp_path: Path, embedder_url: str) -> str:
    """A model of this test's own (metrics are per process): v1 production, v2 and v3 not."""
    name = f"m{uuid.uuid4().hex[:8]}"
    publish(pg_url, tmp_path, name, V1_ROWS, embedder_url)
    publish(pg_url, tmp_path, name, V2_ROWS, embedder_url, promote=False)
    publish(pg_url, tmp_path, name, V1_ROWS[::2], embedder_url, promote=False)
    return name


@pytest.fixture
def registry(pg_url: str) -> Iterator[Registry]:
    engine = make_engine(pg_url)
    yield Registry(session_factory(engine))
    engine.dispose()


def app_for(pg_url: str, tmp_path: Path, embedder: AsyncEmbedderClient, **overrides: Any) -> Any:
    values: dict[str, Any] = {"database_url": pg_url, "artifact_store": str(tmp_path),
                              "reload_interval_s": 0.1, "log_json": False,
                              "environment": "test"}
    return create_app(ClassifierSettings(**values | overrides), embedder=embedder)


async def until_candidate(client: httpx.AsyncClient, model: str,
                          candidate: Candidate | None) -> None:
    wanted = candidate.model_dump() if candidate else None
    for _ in range(100):
        heads = (await client.get("/v1/heads")).json()["data"]
        if [h["candidate"] for h in heads if h["model"] == model] == [wanted]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the classifier never loaded {candidate}")


async def test_pinned_versions_and_unknown_ones(model: str, pg_url: str, tmp_path: Path,
                                                embedder_url: str) -> None:
    embedder = AsyncEmbedderClient(EmbedderClientSettings(url=embedder_url))
    app = app_for(pg_url, tmp_path, embedder, pinned_heads=1)
    async with running(app) as client:
        v2_labels = {label for _, label in V2_ROWS}
        for version in (2, 3, 2):
            answer = await client.post(f"/v1/classify/{model}",
                                       json={"texts": TEXTS, "version": version})
            assert answer.status_code == 200, answer.text
            assert (answer.json()["version"], answer.json()["role"]) == (version, "pinned")
        assert {p["label"] for p in answer.json()["predictions"]} <= v2_labels
        assert app.state.service.heads.pinned() == [(model, 2)]  # at most pinned_heads kept
        production = (await client.post(f"/v1/classify/{model}", json={"texts": TEXTS})).json()
        assert (production["version"], production["role"]) == (1, "production")

        unknown = await client.post(f"/v1/classify/{model}", json={"texts": TEXTS,
                                                                  "version": 9})
        assert unknown.status_code == 404
        assert unknown.json()["error"]["param"] == "version"
        assert "has no version 9; versions: [1, 2, 3]" in unknown.json()["error"]["message"]


async def test_shadow_predicts_on_the_same_embedding(model: str, pg_url: str, tmp_path: Path,
                                                     embedder_url: str,
                                                     registry: Registry) -> None:
    embedder = CountingEmbedder(EmbedderClientSettings(url=embedder_url))
    async with running(app_for(pg_url, tmp_path, embedder)) as client:
        shadow = Candidate(version=2, mode="shadow", share=1.0)
        registry.set_candidate(model, shadow)
        await until_candidate(client, model, shadow)
        before = embedder.calls
        answer = (await client.post(f"/v1/classify/{model}", json={"texts": TEXTS})).json()
        assert embedder.calls == before + 1  # one embedding for both heads
        assert (answer["version"], answer["role"], answer["shadow"]["version"]) == (
            1, "production", 2)
        assert {p["label"] for p in answer["predictions"]} <= {lab for _, lab in V1_ROWS}
        assert {p["label"] for p in answer["shadow"]["predictions"]} <= {
            lab for _, lab in V2_ROWS}
        assert [p["cached"] for p in answer["shadow"]["predictions"]] == [
            p["cached"] for p in answer["predictions"]]
        metrics = (await client.get("/metrics")).text
        assert value(metrics, "polyhead_classifier_shadow_predictions_total", model=model,
                     version="2", outcome="ok") == len(TEXTS)
        assert value(metrics, "polyhead_classifier_candidate_version", model=model) == 2
        pinned = (await client.post(f"/v1/classify/{model}",
                                    json={"texts": TEXTS, "version": 3})).json()
        assert pinned["shadow"] is None  # a pinned request is not shadowed

        half = Candidate(version=2, mode="shadow", share=0.5)
        registry.set_candidate(model, half)
        await until_candidate(client, model, half)
        shadowed = sum([(await client.post(f"/v1/classify/{model}", json={
            "texts": TEXTS[:1], "routing_key": "one-caller"})).json()["shadow"] is not None
            for _ in range(60)])
        assert 30 - 16 <= shadowed <= 30 + 16  # requests are sampled (4 sd), not callers


async def test_canary_is_sticky_and_changes_fail_nothing(model: str, pg_url: str,
                                                         tmp_path: Path,
                                                         embedder_url: str,
                                                         registry: Registry) -> None:
    embedder = AsyncEmbedderClient(EmbedderClientSettings(url=embedder_url))
    async with running(app_for(pg_url, tmp_path, embedder)) as client:
        canary = Candidate(version=2, mode="canary", share=0.5)
        registry.set_candidate(model, canary)
        await until_candidate(client, model, canary)
        keys = [f"user-{i}" for i in range(30)]
        for _ in range(2):  # the same side both times
            for key in keys:
                answer = (await client.post(f"/v1/classify/{model}", json={
                    "texts": TEXTS[:1], "routing_key": key})).json()
                wanted = (2, "canary") if in_share(model, key, 0.5) else (1, "production")
                assert (answer["version"], answer["role"]) == wanted

        statuses: list[int] = []

        async def traffic() -> None:
            for i in range(80):
                r = await client.post(f"/v1/classify/{model}",
                                      json={"texts": TEXTS[:2], "routing_key": f"k{i}"})
                statuses.append(r.status_code)
                await asyncio.sleep(0.01)

        load = asyncio.create_task(traffic())
        for change in (Candidate(version=3, mode="shadow", share=0.5), None):
            registry.clear_candidate(model)
            if change is not None:
                registry.set_candidate(model, change)
            await until_candidate(client, model, change)
        await load
        assert set(statuses) == {200}


async def test_a_candidate_that_fails_to_load(model: str, pg_url: str, tmp_path: Path,
                                              embedder_url: str, registry: Registry) -> None:
    embedder = AsyncEmbedderClient(EmbedderClientSettings(url=embedder_url))
    lost = registry.register(model, write=lambda v: f"file://{tmp_path}/lost/{v}",
                             head_type="logreg", embedder_model=MODEL, embedder_dim=384,
                             num_classes=4, train_rows=80, weighted_f1=0.9, metrics={},
                             params={}, data_fingerprint="", job_id=None).version
    async with running(app_for(pg_url, tmp_path, embedder)) as client:
        registry.set_candidate(model, Candidate(version=lost, mode="shadow", share=1.0))
        for _ in range(100):
            ready = (await client.get("/ready")).json()
            if ready["checks"]["candidates"] != "ok":
                break
            await asyncio.sleep(0.05)
        assert ready["status"] == "ready"
        assert ready["checks"]["candidates"] == f"failed to load: {model} v{lost}"
        answer = await client.post(f"/v1/classify/{model}", json={"texts": TEXTS})
        assert answer.status_code == 200 and answer.json()["shadow"] is None
        metrics = (await client.get("/metrics")).text
        assert value(metrics, "polyhead_classifier_candidate_load_failures_total", model=model,
                     version=str(lost)) == 1  # once, however many retries
        registry.clear_candidate(model)
        for _ in range(100):
            if (await client.get("/ready")).json()["checks"]["candidates"] == "ok":
                break
            await asyncio.sleep(0.05)
        assert (await client.get("/ready")).json()["checks"]["candidates"] == "ok"
