"""Routes that need the database answer a clear 503 while it is down, never a 500, and work
again as soon as it is back (no restart)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import PostgresOutage, running
from tests.trainer.helpers import trainer_app, trainer_settings

pytestmark = [pytest.mark.anyio, pytest.mark.fault]


async def test_trainer_routes_say_the_database_is_down(pg_url: str, tmp_path: Path,
                                                       postgres_outage: PostgresOutage) -> None:
    app = trainer_app(trainer_settings(pg_url, tmp_path, run_worker=False), "http://127.0.0.1:9")
    async with running(app) as client:
        postgres_outage.stop()
        for path in ["/v1/jobs", "/v1/jobs/abc", "/v1/models", "/v1/models/intents"]:
            response = await client.get(path)
            assert response.status_code == 503, (path, response.text)
            assert "database is unavailable" in response.json()["error"]["message"]
            assert response.headers["retry-after"] == "5"
        ready = await client.get("/ready")  # this process can serve: ready, saying what is down
        assert ready.status_code == 200
        assert ready.json()["checks"]["database"].startswith("down: ")
        postgres_outage.start()
        assert (await client.get("/v1/jobs")).status_code == 200
