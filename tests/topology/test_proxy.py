"""Behind a real nginx in the Ingress's role, each caller is itself: one client flooding bad
keys gets 429s, and no other client is refused, nor any valid key, even one created during the
flood; forwarded headers are believed only from the trusted proxy."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from services.cluster.proxy import Nginx
from services.gateway.auth import KeyStore
from shared.db import make_engine, session_factory
from shared.db.migrate import upgrade
from tests.conftest import free_port, pg_schema
from tests.faults.stack import Service


@dataclass
class Edge:
    nginx: Nginx
    gateway: Service
    keys: KeyStore


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    work = tmp_path_factory.mktemp("edge")
    with pg_schema() as db:
        engine = make_engine(db)
        upgrade(engine)
        gateway = Service("gateway", {
            "DATABASE_URL": db, "GATEWAY_CLASSIFIER_URLS": "http://127.0.0.1:9",
            "GATEWAY_LOG_DIR": str(work / "log"), "GATEWAY_AUTH_FAILURE_LIMIT": "5/minute",
            "GATEWAY_TRUSTED_PROXIES": "127.0.0.1"}, work).start()
        port = free_port()
        nginx = Nginx("gateway.conf", f"127.0.0.1:{port}", [f"127.0.0.1:{gateway.port}"],
                      work / "nginx").start()
        try:
            yield Edge(nginx, gateway, KeyStore(session_factory(engine)))
        finally:
            nginx.stop()
            gateway.stop()
            engine.dispose()


def client_at(address: str, base_url: str) -> httpx.Client:
    """A client whose connections leave from ``address`` (a loopback address of its own)."""
    return httpx.Client(base_url=base_url, timeout=10.0,
                        transport=httpx.HTTPTransport(local_address=address))


def models(client: httpx.Client, key: str, **headers: str) -> int:
    return client.get("/v1/models", headers={"Authorization": f"Bearer {key}"} | headers
                      ).status_code


def clear_of_a_window_edge(margin_s: float = 10.0) -> None:
    """Wait, if need be, until the failed-authentication limit's minute has ``margin_s`` left.
    Its sliding-window counter weighs the last minute's count down as the new one goes on, so
    right after a minute turns, one more failure fits under the limit (at 18:52:00 it did)."""
    left = 60 - time.time() % 60
    if left < margin_s:
        time.sleep(left + 0.5)


def test_one_client_flooding_bad_keys_refuses_no_one_else(edge: Edge) -> None:
    before = edge.keys.create(f"steady-{uuid.uuid4().hex[:6]}", ["predict"])
    clear_of_a_window_edge()
    with client_at("127.0.0.2", edge.nginx.url) as abuser, \
            client_at("127.0.0.3", edge.nginx.url) as other:
        assert models(other, before) == 200
        flood = [models(abuser, f"ph_{uuid.uuid4().hex}") for _ in range(30)]
        assert flood[:5] == [401] * 5 and set(flood[5:]) == {429}
        # Claiming another address through the proxy changes nothing: nginx sets its own.
        assert models(abuser, f"ph_{uuid.uuid4().hex}", **{"X-Forwarded-For": "192.0.2.9"}
                      ) == 429
        during = edge.keys.create(f"new-{uuid.uuid4().hex[:6]}", ["predict"])
        assert models(other, before) == 200
        assert models(other, during) == 200  # never seen before the flood: one lookup
        assert models(other, f"ph_{uuid.uuid4().hex}") == 401  # its own count, not the abuser's
        assert models(abuser, during) == 200  # a valid key, even from the abuser's address


def test_forwarded_headers_are_believed_from_trusted_proxies_only(edge: Edge) -> None:
    """Straight to the gateway (no proxy), a client's X-Forwarded-For is its own claim: it is
    ignored, so a flood cannot spread itself over made-up addresses."""
    clear_of_a_window_edge()
    with client_at("127.0.0.4", edge.gateway.url) as direct:
        statuses = [models(direct, f"ph_{uuid.uuid4().hex}",
                           **{"X-Forwarded-For": f"198.51.100.{i}"}) for i in range(8)]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    message = httpx.get(f"{edge.gateway.url}/v1/models", headers={
        "Authorization": f"Bearer ph_{uuid.uuid4().hex}"}).json()["error"]["message"]
    assert message == "unknown or revoked API key"  # 127.0.0.1: its own count


def test_the_request_id_goes_through(edge: Edge) -> None:
    key = edge.keys.create(f"rid-{uuid.uuid4().hex[:6]}", ["predict"])
    with client_at("127.0.0.5", edge.nginx.url) as client:
        sent = client.get("/v1/models", headers={"Authorization": f"Bearer {key}",
                                                 "X-Request-ID": "abc-123"})
        made = client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
    assert sent.headers["x-request-id"] == "abc-123"
    assert len(made.headers["x-request-id"]) >= 16  # nginx's own, or the gateway's



def test_a_body_nginx_keeps_on_disk_goes_through(edge: Edge) -> None:
    """A body larger than nginx's memory buffers (a training CSV) is spooled to a file under
    its prefix: its workers can write there (else nginx answers 500 itself)."""
    key = edge.keys.create(f"big-{uuid.uuid4().hex[:6]}", ["predict"])
    texts = ["a phrase of some length to classify"] * 30_000
    with client_at("127.0.0.6", edge.nginx.url) as client:
        answer = client.post("/v1/models/clinc/predict", json={"texts": texts},
                             headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code in (413, 422), answer.text  # the gateway's answer, not nginx's
    assert answer.json()["error"]["message"]
