"""Building and driving a trainer in tests."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from services.trainer.app import create_app
from shared.clients.embedder import EmbedderClient
from shared.settings import EmbedderClientSettings, TrainerSettings


def trainer_settings(database_url: str, tmp_path: Path, **overrides: Any) -> TrainerSettings:
    values: dict[str, Any] = {"database_url": database_url,
                              "artifact_store": str(tmp_path / "artifacts"),
                              "queue_url": None, "log_json": False, "environment": "test",
                              "heartbeat_s": 0.5, "threads": 2}
    values.update(overrides)
    return TrainerSettings(**values)


def trainer_app(settings: TrainerSettings, embedder_url: str) -> Any:
    client = EmbedderClient(EmbedderClientSettings(url=embedder_url, timeout_s=60, retries=1))
    return create_app(settings, embedder=client)


async def submit(client: httpx.AsyncClient, data: bytes, **fields: Any) -> httpx.Response:
    form = {"name": "intents"} | {k: str(v) for k, v in fields.items()}
    return await client.post("/v1/jobs", data=form, files={"file": ("data.csv", data, "text/csv")})


async def wait_job(client: httpx.AsyncClient, job_id: str, timeout_s: float = 180
                   ) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        job = (await client.get(f"/v1/jobs/{job_id}")).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']} at {job['stage']}"
        await asyncio.sleep(0.1)
