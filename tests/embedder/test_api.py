"""The HTTP contract: OpenAI shapes, every input limit, errors, health and metrics.

These run on the fake backend (fast); the real model's claims are in the other test files.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator

import httpx
import numpy as np
import pytest

from services.embedder.app import create_app
from services.embedder.backends.fake import FakeBackend
from shared.contracts import EmbeddingResponse, ErrorResponse, ModelList
from shared.contracts.embeddings import FeaturesResponse
from tests.conftest import metric, running, settings
from tests.embedder.fakes import BrokenBackend

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings(max_texts_per_request=8, max_chars_per_text=100,
                              max_body_bytes=4096), backend=FakeBackend())
    async with running(app) as c:
        yield c


def error_of(response: httpx.Response) -> str:
    return ErrorResponse.model_validate(response.json()).error.message


async def test_single_text_answers_the_openai_shape(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/embeddings", json={"input": "where is my parcel"})
    assert response.status_code == 200
    body = EmbeddingResponse.model_validate(response.json())
    assert body.object == "list" and body.model == "fake-embedder"
    assert [d.index for d in body.data] == [0]
    assert body.matrix().shape == (1, 16)
    assert body.usage.prompt_tokens == body.usage.total_tokens == 4
    assert body.data[0].cached is False and body.data[0].truncated is False


async def test_list_keeps_order_and_base64_equals_float(client: httpx.AsyncClient) -> None:
    texts = ["book a table", "what is my balance", "book a table"]
    floats = EmbeddingResponse.model_validate(
        (await client.post("/v1/embeddings", json={"input": texts})).json())
    raw = (await client.post("/v1/embeddings",
                             json={"input": texts, "encoding_format": "base64"})).json()
    b64 = EmbeddingResponse.model_validate(raw)
    assert isinstance(raw["data"][0]["embedding"], str)
    decoded = np.frombuffer(base64.b64decode(raw["data"][1]["embedding"]), dtype="<f4")
    np.testing.assert_array_equal(decoded, floats.matrix()[1])
    np.testing.assert_allclose(b64.matrix(), floats.matrix(), rtol=1e-6)
    np.testing.assert_array_equal(floats.matrix()[0], floats.matrix()[2])


async def test_features_are_sentence_then_lexical_rows_in_base64(
        client: httpx.AsyncClient) -> None:
    """/v1/features: base64 by default; each row's first half is the text's embedding."""
    texts = ["book a table", "what is my balance"]
    embedded = EmbeddingResponse.model_validate(
        (await client.post("/v1/embeddings", json={"input": texts})).json())
    raw = (await client.post("/v1/features", json={"input": texts})).json()
    assert isinstance(raw["data"][0]["embedding"], str)
    assert (raw["dimension"], raw["features"]) == (16, "sentence+lexical")
    body = FeaturesResponse.model_validate(raw)
    rows = body.matrix()
    assert rows.shape == (2, 32) and body.embedding_identity == embedded.embedding_identity
    np.testing.assert_allclose(rows[:, :16], embedded.matrix(), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(rows[:, 16:], axis=1), 1, rtol=1e-5)
    assert [d.cached for d in body.data] == [True, True]  # one cache entry serves both routes
    floats = (await client.post("/v1/features", json={"input": texts,
                                                      "encoding_format": "float"})).json()
    np.testing.assert_array_equal(np.asarray([d["embedding"] for d in floats["data"]],
                                             dtype=np.float32), rows)


async def test_truncation_is_reported(client: httpx.AsyncClient) -> None:
    long_text = "w " * 40  # 40 tokens, 80 characters: the fake model keeps 32 tokens
    response = await client.post("/v1/embeddings", json={"input": [long_text, "short"]})
    assert [d["truncated"] for d in response.json()["data"]] == [True, False]
    assert response.headers["X-Polyhead-Truncated"] == "1"


@pytest.mark.parametrize(("body", "expected"), [
    ({"input": []}, "at least one text"),
    ({"input": ""}, "input[0] is empty"),
    ({"input": ["ok", "   \n\t"]}, "input[1] is empty or only whitespace"),
    ({"input": ["ok", 3]}, "input[1] is int, not a string"),
    ({"input": [[1, 2, 3]]}, "input[0] is list, not a string"),
    ({"input": 42}, "input must be a string or a list of strings, not int"),
    ({"input": {"text": "hi"}}, "not dict"),
    ({"input": None}, "not NoneType"),
    ({}, "input is required"),
    ({"input": ["x"] * 9}, "input has 9 texts; the limit is 8"),
    ({"input": "y" * 101}, "input[0] has 101 characters; the limit is 100"),
    ({"input": "hi", "encoding_format": "int8"}, "encoding_format"),
    ({"input": "hi", "dimensions": 8}, "dimensions must be 16"),
])
@pytest.mark.parametrize("route", ["/v1/embeddings", "/v1/features"])
async def test_bad_input_gets_a_clear_422(client: httpx.AsyncClient, body: object,
                                          expected: str, route: str) -> None:
    response = await client.post(route, json=body)
    assert response.status_code == 422, response.text
    assert expected in error_of(response)
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_broken_json_and_wrong_content_are_422(client: httpx.AsyncClient) -> None:
    for content in (b'{"input": ["unterminated', b"\xff\xfe\x00garbage", b"[1, 2]"):
        response = await client.post("/v1/embeddings", content=content,
                                     headers={"content-type": "application/json"})
        assert response.status_code == 422, response.text
        assert error_of(response)


@pytest.mark.parametrize("route", ["/v1/embeddings", "/v1/features"])
async def test_unknown_model_is_404_naming_the_served_one(client: httpx.AsyncClient,
                                                          route: str) -> None:
    response = await client.post(route, json={"input": "hi", "model": "gpt-x"})
    assert response.status_code == 404
    assert "'fake-embedder'" in error_of(response)
    ok = await client.post(route, json={"input": "hi", "model": "fake-embedder"})
    assert ok.status_code == 200


@pytest.mark.parametrize("route", ["/v1/embeddings", "/v1/features"])
async def test_oversized_body_is_413_by_length_and_by_stream(client: httpx.AsyncClient,
                                                             route: str) -> None:
    big = {"input": ["a" * 99] * 50}
    response = await client.post(route, json=big)
    assert response.status_code == 413
    assert "4096 bytes" in error_of(response)

    async def chunks():  # no Content-Length: the limit applies while reading
        for _ in range(10):
            yield b" " * 1000

    streamed = await client.post(route, content=chunks(),
                                 headers={"content-type": "application/json"})
    assert streamed.status_code == 413


async def test_unknown_route_and_method_are_shaped_errors(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v2/nothing")).json()["error"]["type"] == "not_found_error"
    assert (await client.get("/v1/embeddings")).status_code == 405


async def test_request_id_is_kept_or_made(client: httpx.AsyncClient) -> None:
    mine = await client.get("/health", headers={"X-Request-ID": "order-123.retry:2"})
    assert mine.headers["X-Request-ID"] == "order-123.retry:2"
    hostile = await client.get("/health", headers={"X-Request-ID": "x" * 500})
    assert len(hostile.headers["X-Request-ID"]) == 32
    made = await client.post("/v1/embeddings", json={"input": []})
    assert made.json()["error"]["request_id"] == made.headers["X-Request-ID"]


async def test_ops_endpoints(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = (await client.get("/ready")).json()
    assert ready == {"status": "ready", "checks": {"model": "loaded", "redis": "disabled"}}
    models = ModelList.model_validate((await client.get("/v1/models")).json())
    assert models.data[0].id == "fake-embedder" and models.data[0].dimension == 16
    def counts() -> tuple[float | None, ...]:
        return (metric(metrics, "polyhead_http_request_duration_seconds_count",
                       route="/v1/embeddings"),
                metric(metrics, "polyhead_embedder_batch_size_count"),
                metric(metrics, "polyhead_embedder_cache_lookups_total"))

    metrics = (await client.get("/metrics")).text
    before = [n or 0.0 for n in counts()]
    await client.post("/v1/embeddings", json={"input": f"count me {uuid.uuid4().hex}"})
    metrics = (await client.get("/metrics")).text
    after = counts()
    assert all(n is not None and n > b for n, b in zip(after, before, strict=True)), after
    for gauge in ("polyhead_embedder_queue_texts", "polyhead_embedder_cache_hit_ratio"):
        assert metric(metrics, gauge) is not None, gauge
    schema = (await client.get("/openapi.json")).json()
    assert {"/v1/embeddings", "/v1/features"} <= set(schema["paths"])
    assert (await client.get("/docs")).status_code == 200


async def test_model_failure_is_503_without_internals() -> None:
    async with running(create_app(settings(), backend=BrokenBackend())) as client:
        response = await client.post("/v1/embeddings", json={"input": "boom"})
    assert response.status_code == 503
    assert "secret" not in response.text and "CUDA" not in response.text
    assert "see the service logs" in error_of(response)


async def test_failed_model_load_is_reported_by_ready_and_503() -> None:
    from asgi_lifespan import LifespanManager
    app = create_app(settings(model="/nonexistent/model/folder"))
    async with LifespanManager(app) as manager, httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://e") as client:
        for _ in range(200):
            ready = await client.get("/ready")
            if "failed" in ready.text:
                break
            import asyncio
            await asyncio.sleep(0.05)
        assert ready.status_code == 503 and "failed" in ready.json()["checks"]["model"]
        response = await client.post("/v1/embeddings", json={"input": "hi"})
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "2"
        assert (await client.get("/health")).status_code == 200
