"""Odd but valid texts are answered and logged verbatim; the exact limits hold to the unit.

Through the real gateway, classifier and model (limits here: 5 texts, 100 characters each,
a 2048-byte body)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import select

from services.embedder.app import create_app as create_embedder
from shared.db.models import Inference
from tests.conftest import running, settings
from tests.gateway.test_api import auth, gateway, logged, stack  # noqa: F401 (fixture)

pytestmark = [pytest.mark.anyio, pytest.mark.model]

ODD = ["hello\x01\x07 world\x1b[31m", "tab\there\r\nnew line", "🚀 book a flight 👍🏽",
       "👨‍👩‍👧 family plan", "أين طردي؟", "\u202eevil reversed text", "שלום עולם",
       "cafe\u0301 e\u0301le\u0301gant", "zero\u200bwidth\u2060joiners", "\ufeffbom first",
       "𝕱𝖗𝖆𝖐𝖙𝖚𝖗 math letters", "x" * 100]


async def test_odd_texts_are_answered_and_logged_verbatim(stack: dict[str, Any]) -> None:
    async with running(gateway(stack)) as client:
        ids = {}
        for text in ODD:
            response = await client.post("/v1/models/intents/predict", json={"text": text},
                                         headers=auth(stack["predict"]))
            assert response.status_code == 200, (text, response.text)
            ids[response.json()["predictions"][0]["inference_id"]] = text
        for _ in range(100):
            if logged(stack) >= len(ODD):
                break
            await asyncio.sleep(0.05)
    with stack["engine"].connect() as c:
        stored = {row.id: row.input_text
                  for row in c.execute(select(Inference.id, Inference.input_text))}
    assert stored == ids


async def test_limits_hold_exactly(stack: dict[str, Any]) -> None:
    headers = auth(stack["predict"])
    url = "/v1/models/intents/predict"
    async with running(gateway(stack, max_body_bytes=2048)) as client:
        async def status(body: Any = None, raw: bytes | None = None) -> int:
            if raw is not None:
                return (await client.post(url, content=raw, headers=headers | {
                    "content-type": "application/json"})).status_code
            return (await client.post(url, json=body, headers=headers)).status_code

        assert await status({"text": "é" * 100}) == 200          # characters, not bytes
        assert await status({"text": "é" * 101}) == 422
        assert await status({"text": "x" * 10_000}) == 413         # over the body limit first
        assert await status({"texts": ["a"] * 5}) == 200
        assert await status({"texts": ["a"] * 6}) == 422
        assert await status({"text": "hi", "top_k": 50}) == 200
        assert await status({"text": "hi", "top_k": 51}) == 422
        assert await status({"text": "a\x00b"}) == 422
        assert await status(raw=b'{"text": "\\ud800 lone surrogate"}') == 422

        def body_of(size: int) -> bytes:  # valid JSON of exactly ``size`` bytes
            base = json.dumps({"text": "hi"}).encode()  # padded with whitespace before the }
            return base[:-1] + b" " * (size - len(base)) + base[-1:]

        assert await status(raw=body_of(2048)) == 200
        assert await status(raw=body_of(2049)) == 413


async def test_embedder_edges(real_backend: Any) -> None:
    app = create_embedder(settings(max_chars_per_text=8192, max_texts_per_request=4),
                          backend=real_backend)
    async with running(app) as client:
        ok = await client.post("/v1/embeddings", json={"input": ODD[:4]})
        assert ok.status_code == 200 and len(ok.json()["data"]) == 4
        long = await client.post("/v1/embeddings", json={"input": "word " * 1638})  # 8190 chars
        assert long.status_code == 200 and long.json()["data"][0]["truncated"]
        for body, phrase in [({"input": "x" * 8193}, "8193"), ({"input": "x" * 10_000}, "10000"),
                             ({"input": ["a"] * 5}, "limit"), ({"input": "a\x00"}, "NUL")]:
            response = await client.post("/v1/embeddings", json=body)
            assert response.status_code == 422 and phrase in response.text, response.text
