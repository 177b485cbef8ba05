"""What production refuses to start with, and the internal token on the trainer's routes that
change state: refused without it, accepted with it, sent by the gateway's admin proxy and by
the ``polyhead`` command line."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import ValidationError

from services.cli import main as cli
from services.gateway.app import create_app as create_gateway
from services.gateway.auth import KeyStore
from shared.db import make_engine, session_factory
from shared.db.migrate import upgrade
from shared.settings import GatewaySettings, TrainerSettings
from tests.conftest import ServerThread, free_port, to_csv
from tests.trainer.helpers import trainer_app, trainer_settings

TOKEN = "t" * 40
CSV = to_csv([(f"text {i}", "ab"[i % 2]) for i in range(20)])
STATE_CHANGING: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/v1/jobs/feedback", {"json": {"name": "intents"}}),
    ("POST", "/v1/models/intents/promote", {"json": {"version": 1}}),
    ("POST", "/v1/models/intents/rollback", {"json": {}}),
    ("POST", "/v1/jobs", {"data": {"name": "intents"},
                          "files": {"file": ("d.csv", CSV, "text/csv")}})]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("POLYHEAD_ENV", "POLYHEAD_INTERNAL_TOKEN", "GATEWAY_INTERNAL_TOKEN",
                 "TRAINER_INTERNAL_TOKEN", "GATEWAY_AUTH"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_prod_refuses_a_gateway_without_api_keys(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("POLYHEAD_ENV", "prod")
    clean_env.setenv("POLYHEAD_INTERNAL_TOKEN", TOKEN)
    clean_env.setenv("GATEWAY_AUTH", "false")
    with pytest.raises(ValidationError, match="GATEWAY_AUTH=false is refused when "
                                              "POLYHEAD_ENV=prod"):
        GatewaySettings(_env_file=None)
    clean_env.setenv("GATEWAY_AUTH", "true")
    assert GatewaySettings(_env_file=None).auth
    clean_env.setenv("POLYHEAD_ENV", "dev")  # development may run without keys
    clean_env.setenv("GATEWAY_AUTH", "false")
    assert not GatewaySettings(_env_file=None).auth


def test_prod_needs_an_internal_token_of_32_characters(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("POLYHEAD_ENV", "prod")
    for settings in (GatewaySettings, TrainerSettings):
        with pytest.raises(ValidationError, match="POLYHEAD_INTERNAL_TOKEN must be set"):
            settings(_env_file=None)
    clean_env.setenv("POLYHEAD_INTERNAL_TOKEN", "CHANGE-ME")
    with pytest.raises(ValidationError, match="at least 32 characters"):
        TrainerSettings(_env_file=None)
    clean_env.setenv("POLYHEAD_INTERNAL_TOKEN", TOKEN)
    for settings in (GatewaySettings, TrainerSettings):
        loaded = settings(_env_file=None)
        assert loaded.internal_token is not None
        assert loaded.internal_token.get_secret_value() == TOKEN
        assert TOKEN not in repr(loaded) and TOKEN not in str(loaded.model_dump())
    clean_env.setenv("POLYHEAD_ENV", "test")
    clean_env.delenv("POLYHEAD_INTERNAL_TOKEN")
    assert TrainerSettings(_env_file=None).internal_token is None


@pytest.mark.anyio
async def test_trainer_routes_that_change_state_need_the_token(
        pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = trainer_app(trainer_settings(pg_url, tmp_path, run_worker=False,
                                       internal_token=TOKEN), "http://127.0.0.1:9")
    with ServerThread(app) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            for method, path, body in STATE_CHANGING:
                for headers in ({}, {"Authorization": f"Bearer {TOKEN[:-1]}x"},
                                {"Authorization": TOKEN}):
                    answer = await client.request(method, path, headers=headers, **body)
                    assert answer.status_code == 401, (path, headers, answer.text)
                    assert "POLYHEAD_INTERNAL_TOKEN" in answer.json()["error"]["message"]
                answer = await client.request(method, path, **body,
                                              headers={"Authorization": f"Bearer {TOKEN}"})
                assert answer.status_code != 401, (path, answer.text)  # past the token
            for path in ("/v1/jobs", "/v1/models", "/health"):  # reading stays open inside
                assert (await client.get(path)).status_code == 200, path
        # The command line sends POLYHEAD_INTERNAL_TOKEN from its environment.
        with pytest.MonkeyPatch.context() as env:
            env.delenv("POLYHEAD_INTERNAL_TOKEN", raising=False)
            assert cli.main(["--url", server.url, "promote", "nope", "1"]) == 1
            assert "polyhead: 401" in capsys.readouterr().err
            env.setenv("POLYHEAD_INTERNAL_TOKEN", TOKEN)
            assert cli.main(["--url", server.url, "promote", "nope", "1"]) == 1
            assert "polyhead: 404" in capsys.readouterr().err


@pytest.mark.anyio
async def test_the_gateway_admin_proxy_sends_the_internal_token(pg_url: str,
                                                                tmp_path: Path) -> None:
    engine = make_engine(pg_url)
    upgrade(engine)
    admin = KeyStore(session_factory(engine)).create(f"ops-{uuid.uuid4().hex[:6]}", ["admin"])
    engine.dispose()
    trainer = trainer_app(trainer_settings(pg_url, tmp_path, run_worker=False,
                                           internal_token=TOKEN), "http://127.0.0.1:9")
    with ServerThread(trainer) as server:
        for token, accepted in ((TOKEN, True), ("w" * 40, False), (None, False)):
            gateway = create_gateway(GatewaySettings(
                database_url=pg_url, classifier_urls=f"http://127.0.0.1:{free_port()}",
                trainer_url=server.url, internal_token=token, log_json=False,
                environment="test", log_dir=str(tmp_path / "log")))
            async with LifespanManager(gateway) as manager:
                transport = httpx.ASGITransport(app=manager.app)
                async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
                    answer = await c.post("/v1/jobs/feedback", json={"name": "intents"},
                                          headers={"Authorization": f"Bearer {admin}"})
                    assert (answer.status_code != 401) == accepted, (token, answer.text)
