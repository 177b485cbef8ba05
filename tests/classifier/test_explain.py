"""Explanations: the word that carries the intent moves the label most, one embedder request
per explanation, the limits of predict plus a word limit, and an abstaining head explained."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import numpy as np
import pytest

from services.classifier.app import create_app
from services.classifier.explain import explanation, variants, words_of
from services.trainer.fitters import FitSpec, fit
from shared.clients.embedder import AsyncEmbedderClient, EmbedderClient
from shared.settings import ClassifierSettings, EmbedderClientSettings
from tests.classifier.helpers import MODEL, publish
from tests.classifier.test_api import app_for
from tests.conftest import clinc_rows, running

pytestmark = [pytest.mark.anyio, pytest.mark.model]
ROWS = clinc_rows(labels=6, per_label=25)  # accept_reservations, account_blocked, alarm, ...


def embedder_requests(embedder_url: str) -> float:
    """POST /v1/embeddings and /v1/features requests the embedder has answered, from its
    /metrics."""
    metrics = httpx.get(f"{embedder_url}/metrics").text
    pattern = (r'polyhead_http_request_duration_seconds_count\{(?=[^}]*service="embedder")'
               r'(?=[^}]*route="/v1/(?:embeddings|features)")[^}]*\} (\S+)')
    return sum(float(count) for count in re.findall(pattern, metrics))


def explanations(metrics: httpx.Response) -> float:
    """This classifier's explanations of intents v1 so far, from its /metrics."""
    found = re.search(r'^polyhead_classifier_explanations_total\{model="intents",version="1"\}'
                      r" (\S+)$", metrics.text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_the_intent_word_moves_the_label_most_in_one_embedder_request(
        tmp_path: Path, embedder_url: str) -> None:
    db = f"sqlite:///{tmp_path}/db.sqlite"
    publish(db, tmp_path, "intents", ROWS, embedder_url)
    async with running(app_for(db, tmp_path, embedder_url)) as client:
        text = "please wake me up with an  alarm at 7am"
        before = embedder_requests(embedder_url)
        explained_before = explanations(await client.get("/metrics"))
        response = await client.post("/v1/explain/intents", json={"text": text})
        assert embedder_requests(embedder_url) == before + 1
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model"] == "intents" and body["version"] == 1
        assert body["label"] == body["explained_label"] == "alarm" and not body["abstained"]
        assert body["runner_up"]["label"] != "alarm"
        assert body["runner_up"]["probability"] <= body["probability"]
        words = body["words"]
        assert [w["word"] for w in words] == text.split()
        assert all(text[w["start"]:w["end"]] == w["word"] for w in words)
        assert max(words, key=lambda w: w["delta"])["word"] == "alarm"

        # The registry is per process: other tests' explanations count too, so compare.
        assert explanations(await client.get("/metrics")) == explained_before + 1


async def test_limits_are_predicts_plus_a_word_limit(tmp_path: Path, embedder_url: str) -> None:
    db = f"sqlite:///{tmp_path}/db.sqlite"
    publish(db, tmp_path, "intents", ROWS, None)
    app = app_for(db, tmp_path, embedder_url, max_chars_per_text=50, explain_max_words=4)
    async with running(app) as client:
        cases = [("nope", {"text": "hi"}, 404, "unknown model 'nope'; models served here"),
                 ("intents", {"text": " \n"}, 422, "text is empty or only whitespace"),
                 ("intents", {"text": "x" * 51}, 422, "text has 51 characters; the limit is 50"),
                 ("intents", {"text": "one two three four five"}, 422,
                  "text has 5 words; explain takes at most 4"),
                 ("intents", {"text": 3}, 422, "text must be a string, not int"),
                 ("intents", {"texts": ["a"]}, 422, "unknown field texts"),
                 ("intents", {}, 422, "text")]
        for model, body, status, message in cases:
            response = await client.post(f"/v1/explain/{model}", json=body)
            assert response.status_code == status, (body, response.text)
            assert message in response.json()["error"]["message"], response.text


async def test_the_word_limit_keeps_an_explanation_in_one_embedder_request(
        tmp_path: Path, embedder_url: str) -> None:
    """Texts per embedder request (the client's batch size) caps the configured word limit."""
    db = f"sqlite:///{tmp_path}/db.sqlite"
    publish(db, tmp_path, "intents", ROWS, None)
    app = create_app(ClassifierSettings(database_url=db, artifact_store=str(tmp_path),
                                        log_json=False, environment="test"),
                     embedder=AsyncEmbedderClient(EmbedderClientSettings(url=embedder_url,
                                                                         batch_size=4)))
    async with running(app) as client:
        response = await client.post("/v1/explain/intents", json={"text": "set an alarm now"})
        assert response.status_code == 422
        assert "text has 4 words; explain takes at most 3" in response.json()["error"]["message"]
        before = embedder_requests(embedder_url)
        response = await client.post("/v1/explain/intents", json={"text": "set an alarm"})
        assert response.status_code == 200 and embedder_requests(embedder_url) == before + 1


def test_an_abstaining_head_explains_its_top_label_and_one_word_meets_the_uniform(
        embedder_url: str) -> None:
    labels = sorted({label for _, label in ROWS})
    with EmbedderClient(EmbedderClientSettings(url=embedder_url)) as embedder:
        x = embedder.embed([t for t, _ in ROWS]).vectors
        head, _ = fit(FitSpec(kind="logreg"), x, np.array([labels.index(y) for _, y in ROWS]),
                      labels, embedder_model=MODEL)
        head.threshold = 1.0  # nothing is that sure: every answer abstains
        for text in ("set an alarm for six", "alarm"):
            words = words_of(text, max_words=10)
            vectors = embedder.embed([text, *variants(text, words)]).vectors
            [prediction] = head.predict(vectors[:1], 2)
            answer = explanation("intents", 1, labels, prediction,
                                 head.predict_proba(vectors), words)
            assert answer.abstained and answer.label is None
            assert answer.explained_label == "alarm" == prediction.top[0][0]
            assert answer.runner_up is not None and answer.runner_up.label != "alarm"
            assert len(answer.words) == len(text.split())
    [alone] = answer.words  # "alarm" against a head that knows nothing
    assert alone.delta == pytest.approx(answer.probability - 1 / len(labels), abs=1e-5)
