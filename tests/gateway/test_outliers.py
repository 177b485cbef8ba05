"""Outlier detection: a classifier replica is ejected for evidence that it is broken (transport
failures, 5xx in a row without Retry-After), never for overload or one model's errors, and the
gateway's readiness never follows the classifiers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from services.gateway.app import create_app
from services.gateway.outliers import OutlierDetector
from shared.settings import GatewaySettings
from tests.conftest import ServerThread, free_port, running

pytestmark = pytest.mark.anyio
ANSWER = {"model": "", "version": 1, "head_type": "logreg", "embedder_model": "m",
          "predictions": [{"label": "a", "probability": 0.9, "top": [], "abstained": False,
                           "cached": False}],
          "timings": {"embed_ms": 1.0, "head_ms": 1.0, "total_ms": 2.0}}


class ScriptedReplica:
    """A stand-in with the classifier's API shape: serves ``models``, answers each classify
    with ``answers[model]`` (status, headers, error param) or a valid prediction."""

    def __init__(self, models: list[str]) -> None:
        self.answers: dict[str, tuple[int, dict[str, str], str | None]] = {}
        self.delay_s = 0.0  # before each classify's answer (a hung host: longer than a try)
        self.calls = 0
        app = FastAPI()

        @app.get("/health")
        @app.get("/ready")
        async def health() -> dict[str, str]:
            return {"status": "ok"}

        @app.get("/v1/heads")
        async def heads() -> dict[str, Any]:
            return {"data": [{"model": m} for m in models]}

        @app.post("/v1/classify/{model}")
        async def classify(model: str) -> JSONResponse:
            self.calls += 1
            await anyio.sleep(self.delay_s)
            status, headers, param = self.answers.get(model, (200, {}, None))
            if status == 200:
                return JSONResponse(ANSWER | {"model": model})
            error = {"message": f"HTTP {status}", "type": "x", "param": param}
            return JSONResponse({"error": error}, status_code=status, headers=headers)

        self.server = ServerThread(app)
        self.url = self.server.url

    def __enter__(self) -> ScriptedReplica:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)


@pytest.fixture
def replicas() -> Iterator[tuple[ScriptedReplica, ScriptedReplica]]:
    with ScriptedReplica(["fine", "broken"]) as first, \
            ScriptedReplica(["fine", "broken"]) as second:
        yield first, second


def gateway(tmp_path: Path, *urls: str, **overrides: Any) -> FastAPI:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'polyhead.db'}", "auth": False,
        "log_inferences": False, "log_json": False, "environment": "test",
        "classifier_urls": ",".join(urls), "ejection_s": 30.0}
    return create_app(GatewaySettings(**(values | overrides)))


async def predict(client: Any, model: str, n: int) -> list[int]:
    return [(await client.post(f"/v1/models/{model}/predict", json={"text": "hi"})).status_code
            for _ in range(n)]


@pytest.mark.parametrize("status", [429, 503])
async def test_overload_never_ejects(tmp_path: Path, status: int,
                                     replicas: tuple[ScriptedReplica, ScriptedReplica]) -> None:
    busy, other = replicas
    busy.answers["fine"] = (status, {"Retry-After": "1"}, None)
    app = gateway(tmp_path, busy.url, other.url)
    async with running(app) as client:
        assert set(await predict(client, "fine", 20)) == {200}  # the other one answers
        assert busy.calls >= 5
        assert app.state.replicas.ejected() == []
        other.answers["fine"] = (status, {"Retry-After": "1"}, None)
        answer = await client.post("/v1/models/fine/predict", json={"text": "hi"})
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
        assert app.state.replicas.ejected() == []


async def test_errors_about_one_model_never_eject(
        tmp_path: Path, replicas: tuple[ScriptedReplica, ScriptedReplica]) -> None:
    """A version that will not load answers 503 about the model on every replica: that model
    fails, the others answer, nothing is ejected and the gateway stays ready."""
    for replica in replicas:
        replica.answers["broken"] = (503, {}, "model")
    app = gateway(tmp_path, *(r.url for r in replicas), eject_after_5xx=2)
    async with running(app) as client:
        for _ in range(10):
            assert set(await predict(client, "broken", 2)) == {503}
            assert set(await predict(client, "fine", 2)) == {200}
            assert (await client.get("/ready")).status_code == 200
        assert app.state.replicas.ejected() == []


async def test_5xx_in_a_row_eject_then_half_open(
        tmp_path: Path, replicas: tuple[ScriptedReplica, ScriptedReplica]) -> None:
    broken, other = replicas
    broken.answers["fine"] = (500, {}, None)
    app = gateway(tmp_path, broken.url, other.url, eject_after_5xx=3, ejection_s=10.0,
                  routes_refresh_s=0.1)
    async with running(app) as client:
        assert set(await predict(client, "fine", 6)) == {200}  # the other one answers each
        assert app.state.replicas.ejected() == [broken.url]
        calls = broken.calls
        assert calls == 3
        assert set(await predict(client, "fine", 10)) == {200}
        assert broken.calls == calls  # ejected: tried last, so not at all
        # Ten seconds on, it passes its probe (GET /v1/heads) at the next routes refresh and
        # is half-open: it gets traffic again, and one more 500 ejects it for 20 s.
        now = [time.monotonic() + 10.5]
        app.state.replicas.outliers.clock = lambda: now[0]
        while app.state.replicas.ejected():
            await anyio.sleep(0.05)
        assert set(await predict(client, "fine", 2)) == {200}
        assert broken.calls == calls + 1
        assert app.state.replicas.ejected() == [broken.url]
        now[0] += 10.5
        assert app.state.replicas.ejected() == [broken.url]  # 20 s this time
        now[0] += 10.0
        broken.answers.clear()
        while app.state.replicas.ejected():
            await anyio.sleep(0.05)
        assert set(await predict(client, "fine", 4)) == {200}
        assert broken.calls >= calls + 2 and app.state.replicas.ejected() == []


async def test_a_success_between_5xx_starts_the_count_again(
        tmp_path: Path, replicas: tuple[ScriptedReplica, ScriptedReplica]) -> None:
    flaky, _ = replicas
    app = gateway(tmp_path, flaky.url, eject_after_5xx=3)
    async with running(app) as client:
        for _ in range(5):
            flaky.answers["fine"] = (500, {}, None)
            assert await predict(client, "fine", 2) == [503, 503]
            flaky.answers.clear()
            assert await predict(client, "fine", 1) == [200]
        assert app.state.replicas.ejected() == []


async def test_a_prediction_answers_within_its_deadline(
        tmp_path: Path, replicas: tuple[ScriptedReplica, ScriptedReplica]) -> None:
    """Both replicas hung: the first costs a whole try and is ejected, the second only what is
    left of the deadline (no evidence against it), then a 503 with Retry-After: the edge's
    timeout for predictions means a stuck gateway, never a slow model."""
    for replica in replicas:
        replica.delay_s = 2.0
    app = gateway(tmp_path, *(r.url for r in replicas), try_timeout_s=1.0,
                  predict_deadline_s=1.5)
    async with running(app) as client:
        answer = await client.post("/v1/models/fine/predict", json={"text": "hi"})
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
        assert "no answer within 1.5 s" in answer.json()["error"]["message"]
        assert len(app.state.replicas.ejected()) == 1


async def test_readiness_never_follows_the_classifiers(tmp_path: Path) -> None:
    gone = f"http://127.0.0.1:{free_port()}"
    app = gateway(tmp_path, gone)
    async with running(app) as client:  # waits for /ready 200
        ready = (await client.get("/ready")).json()
        assert ready["status"] == "ready"
        assert ready["checks"]["classifiers"] == "1 found, 1 ejected"  # a transport failure
        answer = await client.post("/v1/models/fine/predict", json={"text": "hi"})
        assert answer.status_code == 404  # no replica has ever said it serves "fine"


def test_ejections_grow_with_each_episode_up_to_the_cap() -> None:
    clock = [1000.0]
    detector = OutlierDetector(ejection_s=5.0, max_ejection_s=12.0, eject_after_5xx=2,
                               clock=lambda: clock[0])
    lengths = []
    for _ in range(4):
        detector.transport_failed("r", ConnectionError())  # half-open: one failure is enough
        start = clock[0]
        while detector.is_ejected("r"):
            detector.transport_failed("r", ConnectionError())  # in flight: no longer
            clock[0] += 0.5
            detector.probe_succeeded("r")  # a routes refresh: it answers its GET /v1/heads
        lengths.append(clock[0] - start)
    assert lengths == [5.0, 10.0, 12.0, 12.0]
    detector.responded("r")  # half-open, and it answered: the episode is over
    detector.answered_5xx("r", 500)
    assert not detector.is_ejected("r")  # one 5xx of the two it takes now
    detector.answered_5xx("r", 502)
    assert detector.is_ejected("r")
    clock[0] += 5.0
    assert detector.is_ejected("r")  # its time is over, but it has not passed a probe yet
    detector.probe_succeeded("r")
    assert not detector.is_ejected("r")  # after the first length again


def test_a_replica_is_probed_before_it_gets_traffic_again() -> None:
    clock = [0.0]
    detector = OutlierDetector(ejection_s=5.0, max_ejection_s=60.0, eject_after_5xx=5,
                               clock=lambda: clock[0])
    detector.transport_failed("r", ConnectionError())
    detector.probe_succeeded("r")  # too early: its time out is not over
    clock[0] = 6.0
    assert detector.is_ejected("r")
    detector.transport_failed("r", TimeoutError())  # the probe of a host still booting
    clock[0] = 12.0
    detector.probe_succeeded("r")
    assert detector.is_ejected("r")  # 10 s this time
    clock[0] = 16.5
    detector.probe_succeeded("r")
    assert not detector.is_ejected("r")
