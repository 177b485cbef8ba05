"""The public API end to end: real embedder, classifier replicas over real HTTP, real
PostgreSQL (stopped and started under traffic), API keys with scopes, every input limit."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy
from sqlalchemy import func, select

from services.classifier.app import create_app as create_classifier
from services.gateway.app import create_app
from services.gateway.auth import KeyStore
from shared.clients.embedder import AsyncEmbedderClient
from shared.db import make_engine, session_factory
from shared.db.migrate import upgrade
from shared.db.models import Inference
from shared.registry import Registry
from shared.settings import ClassifierSettings, EmbedderClientSettings, GatewaySettings
from tests.classifier.helpers import publish
from tests.conftest import (
    PostgresOutage,
    ServerThread,
    clinc_rows,
    free_port,
    metric,
    running,
)

pytestmark = [pytest.mark.anyio, pytest.mark.model]
ROWS = clinc_rows(labels=4, per_label=20)


@pytest.fixture
def stack(pg_url: str, tmp_path: Path, embedder_url: str) -> Iterator[dict[str, Any]]:
    """A published head, a classifier replica serving it, API keys; the gateway is per test."""
    publish(pg_url, tmp_path / "artifacts", "intents", ROWS, embedder_url)
    engine = make_engine(pg_url)
    upgrade(engine)
    keys = KeyStore(session_factory(engine))
    predict_key, admin_key = keys.create("app", ["predict"]), keys.create("ops", ["admin"])
    classifier = create_classifier(
        ClassifierSettings(database_url=pg_url, artifact_store=str(tmp_path / "artifacts"),
                           log_json=False, environment="test"),
        embedder=AsyncEmbedderClient(EmbedderClientSettings(url=embedder_url)))
    with ServerThread(classifier) as server:
        yield {"engine": engine, "keys": keys, "predict": predict_key, "admin": admin_key,
               "classifier": server.url, "db": pg_url, "log_dir": tmp_path / "inference-log"}
    engine.dispose()


def gateway(stack: dict[str, Any], *urls: str, **overrides: Any) -> Any:
    values: dict[str, Any] = {"database_url": stack["db"], "log_json": False,
                              "environment": "test", "log_dir": str(stack["log_dir"]),
                              "classifier_urls": ",".join(urls or [stack["classifier"]]),
                              "log_retry_s": 0.3, "max_texts_per_request": 5,
                              "max_chars_per_text": 100}
    values.update(overrides)
    return create_app(GatewaySettings(**values))


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def logged(stack: dict[str, Any]) -> int:
    with stack["engine"].connect() as c:
        return int(c.scalar(select(func.count()).select_from(Inference)))


async def test_predict_logs_every_inference_and_takes_feedback(stack: dict[str, Any]) -> None:
    text, label = clinc_rows("test.csv", labels=4, per_label=1)[2]
    async with running(gateway(stack)) as client:
        response = await client.post("/v1/models/intents/predict", json={"text": text},
                                     headers=auth(stack["predict"]) | {"X-Request-ID": "req-42"})
        assert response.status_code == 200, response.text
        assert response.headers["x-request-id"] == "req-42"
        body = response.json()
        assert body["model"] == "intents" and body["version"] == 1
        [prediction] = body["predictions"]
        assert prediction["label"] == label and len(prediction["top"]) == 3

        many = await client.post("/v1/models/intents/predict",
                                 json={"texts": [t for t, _ in ROWS[:4]], "top_k": 1},
                                 headers=auth(stack["predict"]))
        assert [len(p["top"]) for p in many.json()["predictions"]] == [1, 1, 1, 1]
        # Feedback right away: the row is still in the log's buffer; the route waits for it.
        first_id = many.json()["predictions"][0]["inference_id"]
        quick = await client.post(f"/v1/inferences/{first_id}/feedback",
                                  json={"label": "x", "new_label": True},
                                  headers=auth(stack["predict"]))
        assert quick.status_code == 200, quick.text
        models = (await client.get("/v1/models", headers=auth(stack["predict"]))).json()
        assert models["data"][0]["name"] == "intents"

        for _ in range(100):  # logged off the request path, within a moment
            if logged(stack) == 5:
                break
            await asyncio.sleep(0.05)
        with stack["engine"].connect() as c:
            query = select(Inference).where(Inference.id == prediction["inference_id"])
            row = c.execute(query).one()
        assert (row.request_id, row.client, row.model_name, row.model_version, row.label,
                row.input_text, row.head_type) == ("req-42", "app", "intents", 1, label, text,
                                                   "logreg")
        assert row.total_ms >= row.embed_ms > 0 and row.top_k["top"][0][0] == label

        feedback = await client.post(f"/v1/inferences/{prediction['inference_id']}/feedback",
                                     json={"label": "true_label", "new_label": True},
                                     headers=auth(stack["predict"]))
        assert feedback.json() == {"inference_id": prediction["inference_id"],
                                   "label": "true_label", "predicted": label}
        with stack["engine"].connect() as c:
            assert c.scalar(select(Inference.feedback_label)
                            .where(Inference.id == prediction["inference_id"])) == "true_label"
        missing = await client.post("/v1/inferences/nope/feedback", json={"label": "x"},
                                    headers=auth(stack["predict"]))
        assert missing.status_code == 404


def classify_calls(stack: dict[str, Any]) -> float:
    exposition = httpx.get(f"{stack['classifier']}/metrics").text
    return metric(exposition, "polyhead_http_request_duration_seconds_count",
                  route="/v1/classify/{model}") or 0.0


async def test_concurrent_predictions_share_a_classifier_call_and_keep_their_own_answers(
        stack: dict[str, Any]) -> None:
    texts = [t for t, _ in ROWS[::10]]  # 8 texts of 4 labels
    async with running(gateway(stack)) as client:
        async def predict(text: str) -> dict[str, Any]:
            response = await client.post("/v1/models/intents/predict", json={"text": text},
                                         headers=auth(stack["predict"]))
            assert response.status_code == 200, response.text
            [prediction] = response.json()["predictions"]
            return dict(prediction)

        alone = [await predict(t) for t in texts]  # one call each
        before = classify_calls(stack)
        together = await asyncio.gather(*(predict(t) for t in texts))
        calls = classify_calls(stack) - before
    assert calls < len(texts), calls
    assert [p["label"] for p in together] == [p["label"] for p in alone]
    # The API rounds probabilities to 6 decimals; a batched matrix product may differ from a
    # one-row one in the last float bits, which can move a rounded value by one unit.
    assert [p["probability"] for p in together] == pytest.approx(
        [p["probability"] for p in alone], rel=0, abs=1.01e-6)
    ids = [p["inference_id"] for p in together]
    assert len(set(ids)) == len(texts)
    for _ in range(100):  # logged off the request path, within a moment
        if logged(stack) == 2 * len(texts):
            break
        await asyncio.sleep(0.05)
    with stack["engine"].connect() as c:
        rows = dict(c.execute(select(Inference.id, Inference.input_text)
                              .where(Inference.id.in_(ids))).all())
    assert [rows[i] for i in ids] == texts


async def test_api_keys_and_scopes(stack: dict[str, Any]) -> None:
    body = {"text": "hello"}
    app = gateway(stack)
    async with running(app) as client:
        url = "/v1/models/intents/predict"
        assert (await client.post(url, json=body)).status_code == 401
        wrong = await client.post(url, json=body, headers=auth("ph_not-a-key"))
        assert wrong.status_code == 401 and "unknown or revoked" in wrong.json()["error"]["message"]
        admin_only = await client.post(url, json=body, headers=auth(stack["admin"]))
        assert admin_only.status_code == 403 and "'predict' scope" in admin_only.text
        as_app = auth(stack["predict"])
        assert (await client.post(url, json=body, headers=as_app)).status_code == 200
        stack["keys"].revoke("app")
        app.state.keys._cache.clear()  # the running gateway's cache (30 s) as if expired
        assert (await client.post(url, json=body, headers=as_app)).status_code == 401


async def test_input_limits(stack: dict[str, Any]) -> None:
    headers = auth(stack["predict"])
    cases = [({"text": ""}, 422, "empty"), ({"text": "   "}, 422, "empty"),
             ({"text": 42}, 422, "text must be a string"),
             ({"texts": ["ok", None]}, 422, "texts[1] must be a string, not NoneType"),
             ({"texts": []}, 422, "texts must have at least 1 item"),
             ({"text": "a", "texts": ["b"]}, 422, "either"), ({}, 422, "either"),
             ({"texts": ["a"] * 6}, 422, "the limit is 5"),
             ({"text": "x" * 101}, 422, "101 characters"),
             ({"text": "hi", "top_k": 0}, 422, "top_k")]
    async with running(gateway(stack)) as client:
        for body, status, message in cases:
            response = await client.post("/v1/models/intents/predict", json=body, headers=headers)
            assert response.status_code == status, (body, response.text)
            assert message in response.json()["error"]["message"], (body, response.text)
        unknown = await client.post("/v1/models/nope/predict", json={"text": "hi"}, headers=headers)
        assert unknown.status_code == 404
        assert "unknown model 'nope'; known models: intents" in unknown.json()["error"]["message"]
        huge = await client.post("/v1/models/intents/predict", content=b"x" * 300_000,
                                 headers=headers | {"content-type": "application/json"})
        assert huge.status_code == 413
        broken = await client.post("/v1/models/intents/predict", content=b"{not json",
                                   headers=headers | {"content-type": "application/json"})
        assert broken.status_code == 422


async def test_dead_replica_is_skipped(stack: dict[str, Any]) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    app = gateway(stack, dead, stack["classifier"])
    async with running(app) as client:
        app.state.replicas.routes["intents"] = [dead, stack["classifier"]]  # as if it had served
        for _ in range(6):
            response = await client.post("/v1/models/intents/predict", json={"text": "hi"},
                                         headers=auth(stack["predict"]))
            assert response.status_code == 200, response.text


async def test_a_broken_version_fails_alone_and_every_gateway_stays_ready(
        stack: dict[str, Any], tmp_path: Path) -> None:
    """Requests pinned to a version whose artifact is gone get 503 (on every replica); the
    production version answers, the replica is not ejected, and /ready stays 200."""
    registry = Registry(session_factory(stack["engine"]))
    lost = registry.register("intents", write=lambda v: f"file://{tmp_path}/lost/{v}",
                             head_type="logreg", embedder_model="m", embedder_dim=384,
                             num_classes=4, train_rows=80, weighted_f1=0.9, metrics={},
                             params={}, data_fingerprint="", job_id=None).version
    app = gateway(stack)
    headers = auth(stack["predict"])
    async with running(app) as client:
        for _ in range(10):
            pinned = await client.post("/v1/models/intents/predict", headers=headers,
                                       json={"text": "hi", "version": lost})
            assert pinned.status_code == 503 and "retry-after" in pinned.headers, pinned.text
            production = await client.post("/v1/models/intents/predict", headers=headers,
                                           json={"text": "hi"})
            assert production.status_code == 200, production.text
            assert (await client.get("/ready")).status_code == 200
        assert app.state.replicas.ejected() == []


async def test_database_outage_during_traffic(stack: dict[str, Any],
                                              postgres_outage: PostgresOutage) -> None:
    texts = [t for t, _ in clinc_rows("test.csv", labels=4, per_label=10)]
    ok = 0
    app = gateway(stack)
    async with running(app) as client:
        async def send(n: int) -> None:
            nonlocal ok
            for i in range(n):
                response = await client.post("/v1/models/intents/predict",
                                             json={"text": texts[i % len(texts)]},
                                             headers=auth(stack["predict"]))
                assert response.status_code == 200, response.text
                ok += 1

        await send(10)
        await asyncio.to_thread(postgres_outage.stop)
        await send(30)  # the database is down: every prediction still answers
        assert app.state.inference_log.shipper.pending  # kept on local disk
        await asyncio.to_thread(postgres_outage.start)
        await send(10)
        for _ in range(300):
            if logged(stack) == ok and not app.state.inference_log.shipper.pending:
                break
            await asyncio.sleep(0.1)
    assert ok == 50 and logged(stack) == 50


async def test_reports_views_and_admin_routes(stack: dict[str, Any]) -> None:
    texts = [t for t, _ in clinc_rows("test.csv", labels=4, per_label=5)]
    predict, admin = auth(stack["predict"]), auth(stack["admin"])
    async with running(gateway(stack)) as client:
        ids = []
        for text in texts:
            body = (await client.post("/v1/models/intents/predict", json={"text": text},
                                      headers=predict)).json()
            ids.append((body["predictions"][0]["inference_id"], body["predictions"][0]["label"]))
        for _ in range(100):
            if logged(stack) == len(texts):
                break
            await asyncio.sleep(0.05)
        for inference_id, label in ids[:4]:  # 3 confirmed, 1 corrected
            await client.post(f"/v1/inferences/{inference_id}/feedback",
                              json={"label": label if inference_id != ids[3][0] else "other",
                                    "new_label": True},
                              headers=predict)

        assert (await client.get("/v1/reports/models/intents", headers=predict)).status_code == 403
        report = (await client.get("/v1/reports/models/intents", headers=admin)).json()
        assert report["volume"] == 20 and report["versions"] == {"1": 20}
        assert sum(report["label_distribution"].values()) == 20
        assert report["feedback"] == {"rows": 4, "accuracy": 0.75}
        assert 0 < report["mean_confidence"] <= 1 and report["abstain_rate"] == 0
        assert report["latency_ms"]["p50"] <= report["latency_ms"]["p99"]
        drift = report["drift"]  # served labels vs the training labels of v1
        assert drift["against_version"] == 1 and drift["psi"] >= 0
        assert len(drift["top_changes"]) == 4
        empty = (await client.get("/v1/reports/models/intents?from=2020-01-01T00:00:00&"
                                  "to=2020-01-02T00:00:00", headers=admin)).json()
        assert empty["volume"] == 0 and empty["latency_ms"]["p50"] is None
        bad = await client.get("/v1/reports/models/intents?from=2020-01-02&to=2020-01-01",
                               headers=admin)
        assert bad.status_code == 422
        assert (await client.get("/v1/reports/models/nope", headers=admin)).status_code == 404

        # The same figures for dashboards, straight from SQL.
        with stack["engine"].connect() as c:
            row = c.execute(sqlalchemy.text(
                "SELECT inferences, feedback, feedback_accuracy, p95_ms FROM inference_hourly "
                "WHERE model_name = 'intents'")).one()
        assert (row.inferences, row.feedback, float(row.feedback_accuracy)) == (20, 4, 0.75)
        assert row.p95_ms is not None

        # Admin: promotion and rollback through the public API.
        publish(stack["db"], stack["log_dir"].parent / "artifacts", "intents", ROWS, None,
                promote=False)
        assert (await client.post("/v1/models/intents/promote", json={"version": 2},
                                  headers=predict)).status_code == 403
        move = await client.post("/v1/models/intents/promote", json={"version": 2},
                                 headers=admin)
        assert move.json()["to_version"] == 2
        back = await client.post("/v1/models/intents/rollback", headers=admin)
        assert back.json() == {"model": "intents", "from_version": 2, "to_version": 1,
                               "action": "rollback"}


async def test_training_through_the_gateway(stack: dict[str, Any], tmp_path: Path,
                                            embedder_url: str) -> None:
    from tests.conftest import to_csv
    from tests.trainer.helpers import trainer_app, trainer_settings

    trainer = trainer_app(trainer_settings(stack["db"], tmp_path / "trainer"), embedder_url)
    with ServerThread(trainer) as server:
        app = gateway(stack, trainer_url=server.url)
        async with running(app) as client:
            files = {"file": ("data.csv", to_csv(ROWS), "text/csv")}
            form = {"name": "intents", "head": "logreg", "cv_folds": "3"}
            denied = await client.post("/v1/jobs", data=form, files=files,
                                       headers=auth(stack["predict"]))
            assert denied.status_code == 403
            created = await client.post("/v1/jobs", data=form, files=files,
                                        headers=auth(stack["admin"]))
            assert created.status_code == 202, created.text
            job_id = created.json()["id"]
            for _ in range(300):
                job = (await client.get(f"/v1/jobs/{job_id}", headers=auth(stack["admin"]))).json()
                if job["status"] in ("succeeded", "failed"):
                    break
                await asyncio.sleep(0.1)
            assert job["status"] == "succeeded", job["error"]
            assert job["model"] == {"name": "intents", "version": 2}
            listed = (await client.get("/v1/jobs", headers=auth(stack["admin"]))).json()
            assert [j["id"] for j in listed["data"]] == [job_id]
            refused = await client.post("/v1/jobs", data={"name": "x"},
                                        files={"file": ("a.csv", b"phrase,intent\nhi,a\n")},
                                        headers=auth(stack["admin"]))
            assert refused.status_code == 422 and "missing column" in refused.text
    async with running(gateway(stack, trainer_url=f"http://127.0.0.1:{free_port()}")) as client:
        down = await client.get("/v1/jobs", headers=auth(stack["admin"]))
        assert down.status_code == 503 and "trainer" in down.json()["error"]["message"]
