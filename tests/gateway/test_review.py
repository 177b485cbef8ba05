"""The review queue on real PostgreSQL, through a gateway with a real classifier replica and
the real model: which inferences queue (unsure, answered, unlabelled, in the window), one
entry per text with every inference id, clusters by meaning; labelling by id (a new label,
ids it does not know, a label the model does not know, a label replaced, the rollups kept
equal to the rows); and the errors."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import select

from services.classifier.app import create_app as create_classifier
from services.gateway.app import create_app
from services.gateway.auth import KeyStore
from shared.clients.embedder import AsyncEmbedderClient
from shared.db import make_engine, session_factory
from shared.db.models import FeedbackEvent, Inference
from shared.db.types import utcnow
from shared.settings import ClassifierSettings, EmbedderClientSettings, GatewaySettings
from tests.classifier.helpers import publish
from tests.conftest import ServerThread, clinc_rows, running
from tests.gateway.helpers import gateway_client, record, ship
from tests.gateway.test_feedback import counts

pytestmark = [pytest.mark.anyio, pytest.mark.model]
ROWS = clinc_rows(labels=4, per_label=20)  # accept_reservations, account_blocked, alarm, apr
LABELS = sorted({label for _, label in ROWS})
WEATHER = ["what is the weather", "tell me the weather", "current weather",
           "what's the weather like today", "how is the weather looking in seattle"]
TABLES = ["reserve a table for 3 at 7 for olive garden",
          "i need a table for 3 at olive garden for 7",
          "get a table for me at 7 for 3 people at olive garden"]


@pytest.fixture
def stack(pg_url: str, tmp_path: Path, embedder_url: str) -> Iterator[dict[str, Any]]:
    """Model ``intents`` v1 on real embeddings, a classifier replica serving it, keys."""
    publish(pg_url, tmp_path / "artifacts", "intents", ROWS, embedder_url)
    engine = make_engine(pg_url)
    keys = KeyStore(session_factory(engine))
    classifier = create_classifier(
        ClassifierSettings(database_url=pg_url, artifact_store=str(tmp_path / "artifacts"),
                           log_json=False, environment="test"),
        embedder=AsyncEmbedderClient(EmbedderClientSettings(url=embedder_url)))
    with ServerThread(classifier) as server:
        yield {"engine": engine, "db": pg_url, "classifier": server.url, "log": tmp_path / "log",
               "admin": keys.create("ops", ["admin"]), "app": keys.create("app", ["predict"])}
    engine.dispose()


def gateway(stack: dict[str, Any]) -> Any:
    return create_app(GatewaySettings(
        database_url=stack["db"], classifier_urls=stack["classifier"],
        log_dir=str(stack["log"]), log_json=False, environment="test"))


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def unsure(text: str, at: datetime, **values: Any) -> dict[str, Any]:
    """An abstention on ``text`` by ``intents`` v1 (overridable). Every row has the same
    keys: one insert of many rows takes its columns from the first."""
    return record(at, input_text=text, label=None, probability=0.3, abstained=True,
                  role="production", shadow_of=None, feedback_label=None) | values


def queue_rows(now: datetime) -> dict[str, dict[str, Any]]:
    """Rows of every kind, by name; those named ``in_*`` queue by default."""
    rows = {f"in_weather_{i}": unsure(text, now - timedelta(minutes=10 + i))
            for i, text in enumerate(WEATHER)}
    rows |= {f"in_table_{i}": unsure(text, now - timedelta(minutes=20 + i), abstained=False,
                                     label="accept_reservations", probability=0.4)
             for i, text in enumerate(TABLES)}
    rows |= {
        # the same text again, older and spaced differently: one entry, both ids
        "in_weather_again": unsure("what  is the weather ", now - timedelta(hours=2)),
        "in_lonely": unsure("can you see a hdmi cord", now - timedelta(minutes=30)),
        "sure": unsure("set an alarm", now, label="alarm", abstained=False, probability=0.9),
        "fairly_sure": unsure("wake me at six", now, label="alarm", abstained=False,
                              probability=0.75),
        "labelled": unsure("what is the forecast", now, feedback_label="weather"),
        "old": unsure("will it rain tomorrow", now - timedelta(days=8)),
        "other_model": unsure("what is the weather", now, model_name="support"),
    }
    shadow_of = rows["in_weather_0"]["id"]
    rows["shadow"] = unsure("is it sunny", now, model_version=2, role="shadow",
                            shadow_of=shadow_of)
    rows["pinned"] = unsure("is it snowing outside", now - timedelta(minutes=40),
                            role="pinned")
    return rows


def texts_of(body: dict[str, Any]) -> dict[str, list[str]]:
    entries = ([t for c in body["clusters"] for t in c["texts"]] + body["unclustered"]
               + body["near_known"])
    return {t["text"]: t["inference_ids"] for t in entries}


async def test_the_queue_is_the_unsure_unlabelled_answers_one_per_text_clustered(
        stack: dict[str, Any]) -> None:
    now = utcnow()
    rows = queue_rows(now)
    ship(stack["engine"], rows.values())
    queued = {name for name in rows if name.startswith("in_")} | {"pinned"}
    async with running(gateway(stack)) as client:
        response = await client.get("/v1/models/intents/review", headers=auth(stack["admin"]))
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["model"], body["version"], body["labels"]) == ("intents", 1, LABELS)
        assert body["max_confidence"] == 0.7 and body["scan_limit"] == 50_000
        in_window = [r for r in rows.values()
                     if r["model_name"] == "intents" and r["created_at"] > now - timedelta(7)]
        assert body["scanned"] == len(in_window)
        found = texts_of(body)
        assert sorted(found) == sorted({rows[n]["input_text"] for n in queued} - {
            rows["in_weather_again"]["input_text"]})
        assert found["what is the weather"] == [rows["in_weather_0"]["id"],
                                                rows["in_weather_again"]["id"]]
        assert (body["texts"], body["inferences"]) == (len(found), len(queued))

        weather, tables = body["clusters"][:2]  # largest first
        assert {t["text"] for t in weather["texts"]} == set(WEATHER)
        assert weather["inferences"] == len(WEATHER) + 1 and "weather" in weather["keywords"]
        assert "weather" in weather["proposed_label"].split("_")
        assert {t["text"] for t in tables["texts"]} == set(TABLES)
        assert tables["nearest_label"] == "accept_reservations" and "table" in tables["keywords"]
        [entry] = [t for t in tables["texts"] if t["text"] == TABLES[0]]
        assert (entry["label"], entry["probability"], entry["abstained"]) == (
            "accept_reservations", 0.4, False)
        assert "can you see a hdmi cord" in {t["text"] for t in body["unclustered"]}

        wider = (await client.get("/v1/models/intents/review", headers=auth(stack["admin"]),
                                  params={"max_confidence": 0.8,
                                          "from": (now - timedelta(days=9)).isoformat()})).json()
        assert {"wake me at six", "will it rain tomorrow"} <= set(texts_of(wider))
        assert "set an alarm" not in texts_of(wider)

        newest = (await client.get("/v1/models/intents/review", params={"limit": 2},
                                   headers=auth(stack["admin"]))).json()
        assert sorted(texts_of(newest)) == sorted(WEATHER[:2]) and newest["texts"] == 2
        assert newest["inferences"] == 3  # the older "what is the weather" row counts too

        empty = await client.get("/v1/models/intents/review", headers=auth(stack["admin"]),
                                 params={"to": (now - timedelta(days=20)).isoformat()})
        assert empty.status_code == 200, empty.text
        assert (empty.json()["clusters"], empty.json()["unclustered"]) == ([], [])


async def test_texts_like_a_known_labels_are_answered_apart(
        stack: dict[str, Any], tmp_path: Path, embedder_url: str) -> None:
    """A version with prototypes: the queued texts nearer its alarm examples than to the other
    texts come back as ``near_known``, the weather texts (an intent it does not know) as a
    cluster."""
    publish(stack["db"], tmp_path / "artifacts", "scoped", ROWS, embedder_url, prototypes=True)
    alarms = ["set an alarm for 7 am", "wake me up at six with an alarm",
              "please set my alarm for noon"]
    now = utcnow()
    ship(stack["engine"], [unsure(text, now - timedelta(minutes=i), model_name="scoped")
                           for i, text in enumerate(WEATHER + alarms)])
    async with running(gateway(stack)) as client:
        deadline = time.monotonic() + 30
        while (response := await client.get("/v1/models/scoped/review",
                                             headers=auth(stack["admin"]))).status_code == 503:
            assert time.monotonic() < deadline, response.text  # the replica loads it shortly
            await anyio.sleep(0.2)
        assert response.status_code == 200, response.text
        body = response.json()
    assert sorted(t["text"] for t in body["near_known"]) == sorted(alarms)
    [weather] = body["clusters"]
    assert sorted(t["text"] for t in weather["texts"]) == sorted(WEATHER)
    assert "weather" in weather["proposed_label"].split("_") and body["unclustered"] == []


async def test_labelling_stores_feedback_on_every_id_and_empties_the_queue(
        stack: dict[str, Any]) -> None:
    now = utcnow()
    rows = queue_rows(now)
    ship(stack["engine"], rows.values())
    url = "/v1/models/intents/review/labels"
    async with running(gateway(stack)) as client:
        body = (await client.get("/v1/models/intents/review",
                                 headers=auth(stack["admin"]))).json()
        [weather] = [c for c in body["clusters"] if "weather" in c["keywords"]]
        ids = [i for t in weather["texts"] for i in t["inference_ids"]]
        unknown = [uuid.uuid4().hex, "not-an-id", rows["other_model"]["id"], rows["shadow"]["id"]]

        before = counts(stack["engine"])
        refused = await client.post(url, headers=auth(stack["admin"]),
                                    json={"inference_ids": ids, "label": "weather"})
        assert refused.status_code == 422, refused.text
        assert "unknown label 'weather'" in refused.json()["error"]["message"]
        assert feedback(stack, ids) == {None}

        labelled = await client.post(url, headers=auth(stack["admin"]), json={
            "inference_ids": ids + unknown + ids[:1], "label": "weather", "new_label": True})
        assert labelled.status_code == 200, labelled.text
        assert labelled.json() == {"label": "weather", "labelled": len(ids),
                                   "not_found": unknown}
        assert feedback(stack, ids) == {"weather"}
        with stack["engine"].connect() as c:
            events = c.execute(select(FeedbackEvent.inference_id, FeedbackEvent.client)
                               .where(FeedbackEvent.label == "weather")).all()
        assert sorted(events) == sorted((i, "ops") for i in ids)

        table = [rows["in_table_0"]["id"]]
        known = await client.post(url, headers=auth(stack["admin"]), json={
            "inference_ids": table, "label": "accept_reservations"})
        assert known.json()["labelled"] == 1
        replaced = await client.post(url, headers=auth(stack["admin"]), json={
            "inference_ids": table, "label": "book_table", "new_label": True})
        assert replaced.json()["labelled"] == 1 and feedback(stack, table) == {"book_table"}
        # The reports' feedback counts moved as the rows' did (the row shipped with feedback
        # is in neither the rollups nor these labellings).
        after = counts(stack["engine"])
        moved = [tuple(a - b for a, b in zip(*pair, strict=True))
                 for pair in zip(after, before, strict=True)]
        assert moved == [(len(ids) + 1, 0)] * 2

        left = texts_of((await client.get("/v1/models/intents/review",
                                          headers=auth(stack["admin"]))).json())
        assert not set(WEATHER) & set(left) and TABLES[0] not in left
        assert TABLES[1] in left


async def test_errors(stack: dict[str, Any]) -> None:
    now = utcnow()
    review = "/v1/models/intents/review"
    async with running(gateway(stack)) as client:
        admin = auth(stack["admin"])
        cases: list[tuple[str, dict[str, Any], int, str]] = [
            ("/v1/models/nope/review", {}, 404, "unknown model 'nope'"),
            (review, {"from": now.isoformat(), "to": now.isoformat()}, 422,
             "from must be before to"),
            (review, {"limit": 0}, 422, "limit"),
            (review, {"limit": 2001}, 422, "limit"),
            (review, {"max_confidence": 1.5}, 422, "max_confidence"),
            (review, {"from": "yesterday"}, 422, "from")]
        for path, params, status, message in cases:
            answer = await client.get(path, params=params, headers=admin)
            assert answer.status_code == status, (params, answer.text)
            assert message in answer.json()["error"]["message"], answer.text
        labels = [("/v1/models/nope/review/labels", {"inference_ids": ["a"], "label": "x"}, 404),
                  (review + "/labels", {"inference_ids": [], "label": "x"}, 422),
                  (review + "/labels", {"inference_ids": ["a"] * 2001, "label": "x"}, 422),
                  (review + "/labels", {"inference_ids": ["a"], "label": " "}, 422),
                  (review + "/labels", {"inference_ids": ["a"], "label": "x", "ids": 1}, 422)]
        for path, request, status in labels:
            answer = await client.post(path, json=request, headers=admin)
            assert answer.status_code == status, (request, answer.text)
        for key, status in ((stack["app"], 403), ("nope", 401)):
            assert (await client.get(review, headers=auth(key))).status_code == status
            assert (await client.post(review + "/labels", headers=auth(key), json={
                "inference_ids": ["a"], "label": "x"})).status_code == status

    ship(stack["engine"], [unsure("what is the weather", now)])
    async with gateway_client(stack["db"], stack["log"]) as client:  # no classifier up
        down = await client.get(review)
        assert down.status_code == 503, down.text
        assert "no classifier replica serves model 'intents'" in down.json()["error"]["message"]
        empty = await client.get(review, params={"to": (now - timedelta(days=1)).isoformat()})
        assert empty.status_code == 200 and empty.json()["clusters"] == []


def feedback(stack: dict[str, Any], ids: list[str]) -> set[str | None]:
    with stack["engine"].connect() as c:
        return set(c.scalars(select(Inference.feedback_label).where(Inference.id.in_(ids))))
