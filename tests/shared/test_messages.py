"""Error messages a person can act on (issue 13): what is wrong and where, in plain words,
the field as ``param``; unknown fields refused; and no internal URL or exception text in any
answer (those go to the logs, with the request id)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager

from services.classifier.app import create_app as create_classifier
from services.embedder.app import create_app as create_embedder
from services.embedder.backends.fake import FakeBackend
from services.gateway.app import create_app as create_gateway
from shared.clients.embedder import AsyncEmbedderClient, EmbedderClient
from shared.errors import Unavailable
from shared.settings import ClassifierSettings, EmbedderClientSettings, GatewaySettings
from tests.classifier.helpers import publish
from tests.conftest import ServerThread, clinc_rows, free_port, running, settings
from tests.trainer.helpers import trainer_app, trainer_settings

pytestmark = pytest.mark.anyio


@pytest.fixture
async def embedder() -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_embedder(settings(), backend=FakeBackend())) as client:
        yield client


@asynccontextmanager
async def gateway(tmp_path: Path, **values: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A started gateway without API keys (SQLite), and an in-process client to it."""
    defaults: dict[str, Any] = {"database_url": f"sqlite:///{tmp_path}/gateway.db", "auth": False,
                                "classifier_urls": f"http://127.0.0.1:{free_port()}",
                                "log_dir": str(tmp_path / "inference-log"), "log_json": False,
                                "environment": "test"}
    async with (LifespanManager(create_gateway(GatewaySettings(**(defaults | values))),
                                startup_timeout=60, shutdown_timeout=30) as manager,
                httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app),
                                  base_url="http://gateway") as client):
        yield client


@pytest.fixture
def trainer(tmp_path: Path) -> Iterator[str]:
    app = trainer_app(trainer_settings(f"sqlite:///{tmp_path}/trainer.db", tmp_path),
                      f"http://127.0.0.1:{free_port()}")
    with ServerThread(app) as server:
        yield server.url


def error(response: httpx.Response, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    detail: dict[str, Any] = response.json()["error"]
    return detail


# 1. Invalid JSON: what is wrong and where.

async def test_invalid_json_says_what_and_where(embedder: httpx.AsyncClient) -> None:
    json_header = {"content-type": "application/json"}
    one_line = error(await embedder.post("/v1/embeddings", content=b'{"input": "a""b"}',
                                         headers=json_header))
    assert one_line["message"] == ("the body is not valid JSON: Expecting ',' delimiter at "
                                   "line 1, column 14")
    assert one_line["param"] == "body"
    lines = error(await embedder.post("/v1/embeddings", content=b'{\n  "input": "a",\n  }',
                                      headers=json_header))
    assert lines["message"].endswith("at line 3, column 3"), lines
    assert lines["param"] == "body"


# 2. Plain sentences, the field path as param; unknown fields refused naming the allowed ones.

@pytest.mark.parametrize(("body", "message", "param"), [
    ({}, "input is required", "input"),
    ({"input": 42}, "input must be a string or a list of strings, not int", "input"),
    ({"input": "hi", "dimensions": "x"}, "dimensions must be a whole number", "dimensions"),
    ({"input": "hi", "encoding_format": "int8"}, "encoding_format must be 'float' or 'base64'",
     "encoding_format"),
    ([1, 2], "body must be a JSON object", "body"),
    ({"input": "hi", "inputs": ["x"]}, "unknown field inputs; the allowed fields are input, "
     "model, encoding_format, dimensions, user", "inputs"),
])
async def test_validation_errors_are_plain_sentences(
        embedder: httpx.AsyncClient, body: Any, message: str, param: str) -> None:
    detail = error(await embedder.post("/v1/embeddings", json=body))
    assert detail["message"] == message
    assert detail["param"] == param


async def test_embeddings_still_take_every_openai_field(embedder: httpx.AsyncClient) -> None:
    response = await embedder.post("/v1/embeddings", json={
        "input": ["hi"], "model": "fake-embedder", "encoding_format": "base64",
        "dimensions": 16, "user": "user-1234"})
    assert response.status_code == 200, response.text


async def test_gateway_bodies_refuse_unknown_fields(tmp_path: Path) -> None:
    inference = "0" * 32
    async with gateway(tmp_path) as client:
        typo = error(await client.post("/v1/models/intents/predict",
                                       json={"text": "hi", "topk": 5}))
        assert typo["message"] == ("unknown field topk; the allowed fields are text, texts, "
                                   "top_k, version, routing_key")
        assert typo["param"] == "topk"
        for path, body, param in [
                (f"/v1/inferences/{inference}/feedback", {"lable": "a"}, "lable"),
                ("/v1/models/intents/promote", {"version": 1, "reson": "x"}, "reson"),
                ("/v1/models/intents/rollback", {"force": True}, "force")]:
            detail = error(await client.post(path, json=body))
            assert detail["param"] == param and "the allowed fields are" in detail["message"]
        neither = error(await client.post("/v1/models/intents/predict", json={"top_k": 2}))
        assert neither["message"] == 'send either "text" (a string) or "texts" (a list of strings)'
        wrong_type = error(await client.post("/v1/models/intents/predict", json={"text": 7}))
        assert wrong_type["message"] == "text must be a string, not int"
        assert wrong_type["param"] == "text"
        when = error(await client.get("/v1/reports/models/intents", params={"from": "soon"}))
        assert when["message"].startswith("from must be a date and time such as")
        assert when["param"] == "from"


async def test_trainer_json_bodies_refuse_unknown_fields(trainer: str) -> None:
    async with httpx.AsyncClient(base_url=trainer) as client:
        nested = error(await client.post("/v1/jobs/feedback",
                                         json={"name": "intents", "options": {"hed": "mlp"}}))
        assert nested["param"] == "options.hed"
        assert nested["message"].startswith("unknown field options.hed; the allowed fields of "
                                            "options are head, cv_folds, class_weight")
        threshold = error(await client.post("/v1/jobs/feedback", json={
            "name": "intents", "options": {"threshold": "high"}}))
        assert threshold["message"] == ("options.threshold must be auto, calibrate, none or a "
                                        "number between 0 and 1")
        assert threshold["param"] == "options.threshold"


# 3. POST /v1/jobs with JSON: say what it takes.

async def test_json_to_the_upload_route_says_it_needs_multipart(trainer: str,
                                                                tmp_path: Path) -> None:
    async with httpx.AsyncClient(base_url=trainer) as client:
        direct = error(await client.post("/v1/jobs", json={"name": "intents"}))
    async with gateway(tmp_path, trainer_url=trainer) as client:
        proxied = error(await client.post("/v1/jobs", json={"name": "intents"}))
    for detail in (direct, proxied):
        assert "multipart/form-data" in detail["message"] and '"file"' in detail["message"]
        assert "required" not in detail["message"] and detail["param"] == "body"


# 4. 503s without internal URLs or exception text; the details are logged.

async def test_unreachable_embedder_is_logged_not_told(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    config = EmbedderClientSettings(url=url, retries=0, connect_timeout_s=0.5,
                                    breaker_threshold=1)
    with caplog.at_level(logging.WARNING, logger="shared.clients.embedder"):
        async with AsyncEmbedderClient(config) as client:
            for _ in range(2):  # unreachable, then the open circuit
                with pytest.raises(Unavailable) as raised:
                    await client.embed(["hello"])
                assert "127.0.0.1" not in raised.value.message, raised.value.message
        with EmbedderClient(config) as sync_client, pytest.raises(Unavailable) as raised:
            sync_client.embed(["hello"])
        assert raised.value.message == "the embedder is unreachable; retry shortly"
    assert url in caplog.text


async def test_public_503_names_no_internal_host(tmp_path: Path) -> None:
    """Gateway -> classifier -> dead embedder: every hop answers without a URL."""
    db = f"sqlite:///{tmp_path}/polyhead.db"
    publish(db, tmp_path / "artifacts", "intents", clinc_rows(labels=2, per_label=10), None)
    dead = EmbedderClientSettings(url="http://127.0.0.1:9", retries=0)  # nothing listens
    classifier = create_classifier(
        ClassifierSettings(database_url=db, artifact_store=str(tmp_path / "artifacts"),
                           log_json=False, environment="test"),
        embedder=AsyncEmbedderClient(dead))
    with ServerThread(classifier) as replica:
        internal = httpx.post(f"{replica.url}/v1/classify/intents", json={"texts": ["hi"]})
        async with gateway(tmp_path, database_url=db, classifier_urls=replica.url) as client:
            public = await client.post("/v1/models/intents/predict", json={"text": "hi"})
    for response in (internal, public):
        message = error(response, 503)["message"]
        assert "http" not in message and "127.0.0.1" not in message, message
        assert "retry shortly" in message


async def test_failed_model_load_hides_the_reason() -> None:
    app = create_embedder(settings(model="/nonexistent/model/folder"))
    async with (LifespanManager(app) as manager,
                httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app),
                                  base_url="http://embedder") as client):
        for _ in range(200):
            ready = await client.get("/ready")
            if "failed" in ready.text:
                break
            await anyio.sleep(0.05)
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"model": "failed to load; see the service logs"}
        embed = error(await client.post("/v1/embeddings", json={"input": "hi"}), 503)
        assert embed["message"] == "the model failed to load; see the service logs"



async def test_missing_report_names_no_storage_path(trainer: str, tmp_path: Path) -> None:
    # The head alone, as tests publish it: the version has no report.json in the store.
    publish(f"sqlite:///{tmp_path}/trainer.db", tmp_path / "artifacts", "intents",
            clinc_rows(labels=2, per_label=10), None)
    async with httpx.AsyncClient(base_url=trainer) as client:
        no_report = error(await client.get("/v1/models/intents/versions/1/report"), 404)
        shutil.rmtree(tmp_path / "artifacts" / "intents")
        no_version = error(await client.get("/v1/models/intents/versions/1/report"), 404)
    for detail in (no_report, no_version):
        assert detail["message"] == ("the report of model 'intents' v1 is missing from the "
                                     "artifact store")
