"""The classifier's metrics, as /metrics shows them: predictions, abstentions and latency per
model and version, the version each model has loaded, the embedder client's circuit breaker;
and the optional access log line (with the request id)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from services.embedder.app import create_app as create_embedder
from tests.classifier.helpers import publish
from tests.classifier.test_api import app_for
from tests.conftest import clinc_rows, free_port, running, settings

pytestmark = pytest.mark.anyio


def value(metrics: str, name: str, **labels: str) -> float:
    """The sample ``name{labels...}`` (labels in any order, others allowed); 0 when absent."""
    for line in metrics.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            return float(match.group(2))
    return 0.0


@pytest.mark.model
async def test_predictions_abstentions_latency_and_loaded_versions(
        pg_url: str, tmp_path: Path, embedder_url: str) -> None:
    model = f"m{uuid.uuid4().hex[:8]}"  # metrics are per process: a model of this test's own
    publish(pg_url, tmp_path, model, clinc_rows(labels=4, per_label=20), embedder_url)
    async with running(app_for(pg_url, tmp_path, embedder_url)) as client:
        texts = [t for t, _ in clinc_rows("test.csv", labels=4, per_label=2)]
        answer = await client.post(f"/v1/classify/{model}", json={"texts": texts})
        assert answer.status_code == 200, answer.text
        abstained = sum(p["abstained"] for p in answer.json()["predictions"])
        metrics = (await client.get("/metrics")).text
        labels = {"model": model, "version": "1"}
        assert value(metrics, "polyhead_classifier_predictions_total", **labels) == len(texts)
        assert value(metrics, "polyhead_classifier_abstentions_total", **labels) == abstained
        assert value(metrics, "polyhead_classifier_classify_seconds_count", **labels) == 1
        assert value(metrics, "polyhead_classifier_loaded_version", model=model) == 1

        publish(pg_url, tmp_path, model, clinc_rows(labels=5, per_label=20), embedder_url)
        for _ in range(100):  # reloads every 0.2 s
            metrics = (await client.get("/metrics")).text
            if value(metrics, "polyhead_classifier_loaded_version", model=model) == 2:
                break
            await _sleep(0.05)
        assert value(metrics, "polyhead_classifier_loaded_version", model=model) == 2


async def test_the_circuit_breaker_state_is_a_gauge(pg_url: str, tmp_path: Path) -> None:
    """Classifier heads whose embedder is down: the breaker opens (threshold 2 in app_for)."""
    publish(pg_url, tmp_path, "intents", clinc_rows(labels=3, per_label=10), None)
    dead = f"http://127.0.0.1:{free_port()}"
    async with running(app_for(pg_url, tmp_path, dead)) as client:
        for _ in range(3):
            answer = await client.post("/v1/classify/intents", json={"texts": ["hello"]})
            assert answer.status_code == 503
        metrics = (await client.get("/metrics")).text
        assert re.search(r"^polyhead_embedder_breaker_state 2\.0$", metrics, re.M), metrics


async def test_the_access_log_is_off_by_default_and_carries_the_request_id(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for enabled in (False, True):
        monkeypatch.setenv("ACCESS_LOG", str(enabled).lower())
        app = create_embedder(settings(backend="fake"))
        async with running(app) as client:
            capsys.readouterr()
            answer = await client.get("/v1/models", headers={"X-Request-ID": "req-access-1"})
            assert answer.status_code == 200
        lines = [line for line in capsys.readouterr().out.splitlines()
                 if "polyhead.access" in line]
        if not enabled:
            assert lines == []
        else:
            assert any("[req-access-1]" in line and "GET '/v1/models' 200" in line
                       for line in lines), lines


async def _sleep(seconds: float) -> None:
    import asyncio
    await asyncio.sleep(seconds)
