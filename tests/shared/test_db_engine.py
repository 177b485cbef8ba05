"""Every wait on PostgreSQL is bounded and a database that fails answers 503 with Retry-After;
a bug is a logged 500, never disguised as an outage."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy
from fastapi import FastAPI
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from services.gateway.app import create_app
from shared.db import make_engine
from shared.db.engine import DATABASE_OUTAGES
from shared.settings import GatewaySettings
from tests.conftest import ServerThread, free_port, running

pytestmark = pytest.mark.anyio
REPORT = "/v1/reports/models/intents/series"


def gateway(db_url: str, tmp_path: Path) -> FastAPI:
    """A gateway without keys or a live classifier: only its database routes work."""
    return create_app(GatewaySettings(
        database_url=db_url, auth=False, classifier_urls=f"http://127.0.0.1:{free_port()}",
        log_dir=str(tmp_path / "log"), log_json=False, environment="test"))


def test_a_statement_over_its_timeout_is_cancelled(pg_url: str) -> None:
    engine = make_engine(pg_url, statement_timeout_s=0.2)
    try:
        start = time.monotonic()
        with pytest.raises(DATABASE_OUTAGES, match="statement timeout"), engine.connect() as c:
            c.execute(text("SELECT pg_sleep(5)"))
        assert time.monotonic() - start < 3
        with engine.connect() as c:  # the connection is fine afterwards
            assert c.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def test_connections_carry_keepalives_and_timeouts(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        with engine.connect() as c:
            settings = {name: c.execute(text(f"SHOW {name}")).scalar() for name in (
                "statement_timeout", "idle_in_transaction_session_timeout")}
            info = c.connection.dbapi_connection.info  # type: ignore[union-attr]  # psycopg's
        assert settings == {"statement_timeout": "30s",
                            "idle_in_transaction_session_timeout": "1min"}
        params = info.get_parameters()
        assert params["keepalives"] == "1" and params["tcp_user_timeout"] == "15000"
    finally:
        engine.dispose()


async def test_no_free_connection_answers_503_in_seconds(pg_url: str, tmp_path: Path) -> None:
    app = gateway(pg_url, tmp_path)
    async with running(app) as client:
        sessions = app.state.registry.sessions
        engine: Engine = sessions.kw["bind"]
        held: list[Session] = []
        try:
            for _ in range(engine.pool.size() + engine.pool._max_overflow):  # type: ignore[attr-defined]  # QueuePool's
                session = sessions()
                session.execute(text("SELECT 1"))
                held.append(session)
            start = time.monotonic()
            response = await client.get(REPORT)
            assert time.monotonic() - start < 10
        finally:
            for session in held:  # back to the pool before the app disposes of it
                session.close()
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "5"
        assert response.json()["error"]["message"] == "the database is unavailable; retry shortly"


def test_a_bug_is_a_logged_500_not_an_outage(pg_url: str, tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    """A table missing (a migration that never ran) is no outage: it must be seen."""
    with ServerThread(gateway(pg_url, tmp_path)) as server:
        engine = make_engine(pg_url)
        with engine.begin() as c:
            c.execute(text("DROP TABLE inference_feedback CASCADE"))
            c.execute(text("DROP TABLE inferences CASCADE"))
        engine.dispose()
        logging.getLogger().addHandler(caplog.handler)  # the app's logging setup replaced it
        with caplog.at_level(logging.ERROR):
            response = httpx.post(f"{server.url}/v1/inferences/{'a' * 32}/feedback",
                                  json={"label": "x"})
        assert response.status_code == 500, response.text
        rid = response.json()["error"]["request_id"]
        assert rid and response.headers["x-request-id"] == rid  # what to look for in the logs
        logged = [r for r in caplog.records if r.name == "shared.web.errors"]
        assert [r.getMessage() for r in logged] == ["unhandled error"]
        assert logged[0].exc_info is not None
        assert isinstance(logged[0].exc_info[1], sqlalchemy.exc.ProgrammingError)
