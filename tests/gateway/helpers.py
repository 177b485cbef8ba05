"""Inference rows shipped as the gateway's log shipper ships them (rows and rollup deltas in one
transaction), and a gateway with no classifier behind it, for the report and feedback routes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import Engine

from services.gateway.app import create_app
from shared.db import rollups
from shared.db.models import Inference
from shared.settings import GatewaySettings
from tests.conftest import free_port

LABELS = ("a", "b", "c")  # the labels the test model ``intents`` is trained on


def record(created_at: datetime, **values: Any) -> dict[str, Any]:
    """One inference record as the gateway logs it; ``values`` override the defaults."""
    return {"id": uuid.uuid4().hex, "created_at": created_at, "request_id": None,
            "client": "app", "model_name": "intents", "model_version": 1,
            "head_type": "logreg", "embedder_model": "m", "input_text": "some text",
            "label": "a", "probability": 0.9, "top_k": {}, "abstained": False,
            "cache_hit": False, "embed_ms": 4.0, "head_ms": 1.0, "total_ms": 6.0} | values


def ship(engine: Engine, records: Iterable[dict[str, Any]]) -> None:
    """Insert the rows and add their deltas to the rollups in one transaction, as the shipper
    does (so the rollups always match the rows)."""
    records = list(records)
    with engine.begin() as c:
        c.execute(Inference.__table__.insert(), records)
        rollups.deltas_of(records).write(c)


@asynccontextmanager
async def gateway_client(db_url: str, log_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A started gateway (no API keys, no live classifier: only the database routes work)
    and an in-process HTTP client to it."""
    app = create_app(GatewaySettings(
        database_url=db_url, auth=False, classifier_urls=f"http://127.0.0.1:{free_port()}",
        log_dir=str(log_dir), log_json=False, environment="test"))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client
