"""The embedder as users start it: gunicorn + uvicorn worker, the real model, over TCP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from shared.clients import EmbedderClient
from shared.http import NotReady, wait_ready
from shared.settings import EmbedderClientSettings
from tests.conftest import ROOT, free_port, metric

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def gunicorn_embedder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("e2e") / "embedder.log"
    env = {**os.environ, "EMBEDDER_BIND": f"127.0.0.1:{port}", "EMBEDDER_THREADS": "1",
           "EMBEDDER_REDIS_URL": "", "REDIS_URL": "", "LOG_JSON": "true"}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(gunicorn), "-c", "deploy/gunicorn/embedder.py"], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_ready(url, timeout_s=90, alive=lambda: proc.poll() is None)
        except NotReady as exc:
            pytest.fail(f"{exc}; its log ends:\n{log.read_text()[-2000:]}")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()[-2000:]


def test_sync_client_against_gunicorn(gunicorn_embedder: str) -> None:
    config = EmbedderClientSettings(url=gunicorn_embedder)
    with EmbedderClient(config) as client:
        first = client.embed(["Where is my parcel?", "book a table for two"])
        again = client.embed(["where is my  parcel?"])
    assert first.vectors.shape == (2, 384) and first.model.endswith("all-MiniLM-L6-v2")
    np.testing.assert_allclose(np.linalg.norm(first.vectors, axis=1), 1.0, atol=1e-5)
    assert again.cached == [True]
    np.testing.assert_array_equal(again.vectors[0], first.vectors[0])


def test_ops_endpoints_over_tcp(gunicorn_embedder: str) -> None:
    response = httpx.get(f"{gunicorn_embedder}/health", headers={"X-Request-ID": "e2e-1"})
    assert response.json() == {"status": "ok"} and response.headers["x-request-id"] == "e2e-1"
    httpx.post(f"{gunicorn_embedder}/v1/embeddings", json={"input": uuid.uuid4().hex})
    metrics = httpx.get(f"{gunicorn_embedder}/metrics").text
    forwards = metric(metrics, "polyhead_embedder_forward_seconds_count")
    assert forwards is not None and forwards >= 1  # a text never seen: a forward pass
