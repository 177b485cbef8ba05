"""``POST /v1/models/{name}/explain`` and ``polyhead explain`` end to end: real embedder, a
classifier replica and the gateway over real HTTP, real PostgreSQL, API keys."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from services.classifier.app import create_app as create_classifier
from services.cli import main as cli
from services.gateway.app import create_app as create_gateway
from services.gateway.auth import KeyStore
from shared.clients.embedder import AsyncEmbedderClient
from shared.db import make_engine, session_factory
from shared.db.models import Inference
from shared.settings import ClassifierSettings, EmbedderClientSettings, GatewaySettings
from tests.classifier.helpers import publish
from tests.conftest import ServerThread, clinc_rows, free_port

pytestmark = pytest.mark.model
TEXT = "please wake me up with an alarm at 7am"  # 9 words


@pytest.fixture(scope="module")
def suite(embedder_url: str, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[dict[str, Any]]:
    """The model ``intents`` (six CLINC150 intents, ``alarm`` among them) behind a classifier
    (at most 10 words to explain) and a gateway (texts up to 100 characters); three keys."""
    from tests.conftest import pg_schema

    tmp = tmp_path_factory.mktemp("explain")
    with pg_schema() as db:
        publish(db, tmp / "artifacts", "intents", clinc_rows(labels=6, per_label=25),
                embedder_url)
        engine = make_engine(db)
        keys = KeyStore(session_factory(engine))
        found = {"predict": keys.create("app", ["predict"]),
                 "admin": keys.create("ops", ["admin"]),
                 "limited": keys.create("slow", ["predict"], "2/minute")}
        classifier = create_classifier(
            ClassifierSettings(database_url=db, artifact_store=str(tmp / "artifacts"),
                               explain_max_words=10, log_json=False, environment="test"),
            embedder=AsyncEmbedderClient(EmbedderClientSettings(url=embedder_url)))
        with ServerThread(classifier) as replica, ServerThread(create_gateway(GatewaySettings(
                database_url=db, classifier_urls=replica.url, log_dir=str(tmp / "log"),
                max_chars_per_text=100, log_json=False, environment="test"))) as gateway:
            yield {"url": gateway.url, "engine": engine, "keys": found}
        engine.dispose()


def post(suite: dict[str, Any], path: str, body: object, key: str | None = "predict"
         ) -> httpx.Response:
    headers = {"Authorization": f"Bearer {suite['keys'][key]}"} if key else {}
    return httpx.post(f"{suite['url']}{path}", json=body, headers=headers, timeout=30)


def test_explain_needs_the_predict_scope_and_is_not_logged(suite: dict[str, Any]) -> None:
    response = post(suite, "/v1/models/intents/explain", {"text": TEXT})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["label"] == "alarm" and not body["abstained"]
    assert max(body["words"], key=lambda w: w["delta"])["word"] == "alarm"
    assert post(suite, "/v1/models/intents/explain", {"text": TEXT}, "admin").status_code == 403
    assert post(suite, "/v1/models/intents/explain", {"text": TEXT}, None).status_code == 401

    # A prediction is logged; the explanations before it are not. The log ships in the order
    # it was written, so once the prediction's row is in, any row written before it is too.
    predicted = post(suite, "/v1/models/intents/predict", {"text": TEXT})
    assert predicted.status_code == 200
    deadline = time.monotonic() + 10
    while logged(suite) < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    with suite["engine"].connect() as c:
        ids = list(c.scalars(select(Inference.id)))
    assert ids == [predicted.json()["predictions"][0]["inference_id"]]


def logged(suite: dict[str, Any]) -> int:
    with suite["engine"].connect() as c:
        return int(c.scalar(select(func.count()).select_from(Inference)))


@pytest.mark.parametrize(("model", "body", "status", "message"), [
    ("nope", {"text": "hi"}, 404, "unknown model 'nope'; known models: intents"),
    ("intents", {"text": "  "}, 422, "text is empty or only whitespace"),
    ("intents", {"text": "x" * 101}, 422, "text has 101 characters; the limit is 100"),
    ("intents", {"text": " ".join(["alarm"] * 11)}, 422,
     "text has 11 words; explain takes at most 10"),
    ("intents", {"text": "hi", "top_k": 2}, 422, "unknown field top_k"),
    ("intents", {"texts": ["hi"]}, 422, "unknown field texts"),
])
def test_bad_input_is_a_clear_4xx(suite: dict[str, Any], model: str, body: object,
                                  status: int, message: str) -> None:
    response = post(suite, f"/v1/models/{model}/explain", body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]


def test_explanations_count_against_the_rate_limit(suite: dict[str, Any]) -> None:
    statuses = [post(suite, "/v1/models/intents/explain", {"text": "hi"}, "limited").status_code
                for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_polyhead_explain(suite: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    where = ["--gateway", suite["url"], "--key", suite["keys"]["predict"]]
    assert cli.main(["explain", "intents", TEXT, *where]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("intents v1: alarm (0.")
    assert lines[1].startswith("runner-up: ")
    bars = {line.split()[0]: line for line in lines[3:]}
    assert list(bars) == TEXT.split()
    assert "│" + "█" * 20 in bars["alarm"] and bars["alarm"].endswith(
        f"+{max_delta(suite):.3f}")

    assert cli.main(["explain", "intents", TEXT, "--json", *where]) == 0
    assert json.loads(capsys.readouterr().out)["explained_label"] == "alarm"

    assert cli.main(["explain", "nope", TEXT, *where]) == 1
    assert "404: unknown model 'nope'" in capsys.readouterr().err
    dead = ["--gateway", f"http://127.0.0.1:{free_port()}"]
    assert cli.main(["explain", "intents", TEXT, *dead]) == 2
    assert "cannot reach the gateway" in capsys.readouterr().err


def max_delta(suite: dict[str, Any]) -> float:
    words = post(suite, "/v1/models/intents/explain", {"text": TEXT}).json()["words"]
    return float(max(w["delta"] for w in words))
