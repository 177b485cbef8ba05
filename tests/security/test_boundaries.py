"""What cannot get in: SQL built from strings, unbounded uploads, paths out of the artifact
store, and internal services reachable from outside."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from services.embedder.app import create_app as create_embedder
from shared.artifacts import ArtifactError, ArtifactStore
from tests.conftest import ROOT, running, settings
from tests.deploy.test_static import tool
from tests.embedder.fakes import SlowBackend
from tests.trainer.helpers import trainer_app, trainer_settings


def test_no_sql_is_built_from_strings_and_nothing_is_unpickled() -> None:
    """bandit: B608 (SQL from string formatting), B301/B403 (pickle), B102/B307 (exec/eval)."""
    result = subprocess.run([tool("bandit"), "-q", "-r", "services", "shared",
                             "-t", "B608,B301,B403,B102,B307"], cwd=ROOT, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


class Counted:
    """A streamed body (no Content-Length) that counts how much of it was pulled."""

    def __init__(self, chunks: int, size: int = 64 * 1024, head: bytes = b"") -> None:
        self.chunks, self.size, self.head, self.sent = chunks, size, head, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.head
        for _ in range(self.chunks):
            self.sent += 1
            yield b"x" * self.size


@pytest.mark.anyio
async def test_oversized_uploads_are_cut_off_while_streaming(pg_url: str, tmp_path: Path) -> None:
    """A 64 MiB chunked upload to a 1 MiB limit: 413 after ~1 MiB is read, not the whole body."""
    app = trainer_app(trainer_settings(pg_url, tmp_path, run_worker=False,
                                       max_upload_bytes=1024 * 1024), "http://127.0.0.1:9")
    async with running(app) as client:
        body = Counted(chunks=1024, head=b'--b\r\nContent-Disposition: form-data; name="file"; '
                       b'filename="d.csv"\r\nContent-Type: text/csv\r\n\r\n')
        response = await client.post("/v1/jobs", content=body,
                                     headers={"content-type": "multipart/form-data; boundary=b"})
        assert response.status_code == 413, response.text
        assert body.sent * body.size < 2 * 1024 * 1024, f"{body.sent} chunks were read"
    embedder = create_embedder(settings(max_body_bytes=4096), backend=SlowBackend(delay_s=0))
    async with running(embedder) as client:
        body = Counted(chunks=1024, size=1024)
        response = await client.post("/v1/embeddings", content=body,
                                     headers={"content-type": "application/json"})
        assert response.status_code == 413 and body.sent <= 6


def test_artifact_paths_cannot_escape_the_store(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    for name in ["../evil", "a/../../evil", "/etc", "..", "Intents", "a b", ""]:
        with pytest.raises(ArtifactError, match="refusing"):
            store.write_version(name, 1, {"head.json": b"{}"})
    with pytest.raises(ArtifactError, match="refusing"):
        store.write_version("ok", 1, {"../head.json": b"{}"})
    with pytest.raises(ArtifactError, match="outside the store"):
        store.read_version(str(tmp_path / "elsewhere"))
    with pytest.raises(ArtifactError, match="outside the store"):
        store.read_version(f"{store.url}/ok/../../elsewhere")
    assert not (tmp_path / "evil").exists() and not (tmp_path / "store" / "evil").exists()


@pytest.mark.anyio
async def test_model_names_with_dot_dot_are_refused_by_the_trainer(pg_url: str,
                                                                    tmp_path: Path) -> None:
    app = trainer_app(trainer_settings(pg_url, tmp_path, run_worker=False), "http://127.0.0.1:9")
    async with running(app) as client:
        for name in ["../evil", "..", "a/b", "../../etc/passwd"]:
            response = await client.post("/v1/jobs", data={"name": name},
                                         files={"file": ("d.csv", b"text,label\na,b\n")})
            assert response.status_code == 422 and "name" in response.text, (name, response.text)
            feedback = await client.post("/v1/jobs/feedback", json={"name": name})
            assert feedback.status_code == 422, (name, feedback.text)
        nul = await client.get("/v1/jobs", params={"model": "a\x00b"})
        assert nul.status_code == 422 and "NUL" in nul.text
    assert not list(tmp_path.rglob("evil*"))


def gunicorn_bind(service: str) -> str:
    """The bind a deploy/gunicorn config uses with no *_BIND variable set. (Loading a config
    may set PROMETHEUS_MULTIPROC_DIR: the environment is restored exactly afterwards.)"""
    saved = dict(os.environ)
    for k in [k for k in os.environ if k.endswith("_BIND")]:
        del os.environ[k]
    try:
        spec = importlib.util.spec_from_file_location(f"gc_{service}",
                                                      ROOT / f"deploy/gunicorn/{service}.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return str(module.bind)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_only_the_gateway_is_exposed_by_default() -> None:
    for service in ["embedder", "classifier", "trainer"]:
        assert gunicorn_bind(service).startswith("127.0.0.1:"), service
    assert gunicorn_bind("gateway") == "0.0.0.0:8000"

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, spec in compose["services"].items():
        for port in spec.get("ports", []):
            if name != "gateway":  # published on this host's loopback only
                assert str(port).startswith("127.0.0.1:"), (name, port)

    kinds: dict[str, list[Any]] = {}
    for path in (ROOT / "deploy/k8s").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                kinds.setdefault(doc["kind"], []).append(doc)
    for service in kinds["Service"]:  # cluster-internal: no NodePort, no LoadBalancer
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP", service["metadata"]
    backends = {path["backend"]["service"]["name"] for ingress in kinds["Ingress"]
                for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]}
    assert backends == {"gateway"}


def test_the_development_server_listens_on_loopback_unless_told(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``python -m services.<name>`` (polyhead up): what it asks uvicorn to bind."""
    import uvicorn

    from shared import devserver

    binds: list[tuple[str, int]] = []
    monkeypatch.setattr(uvicorn, "run",
                        lambda *_, host, port, **__: binds.append((host, port)))
    for argv in (["x"], ["x", "--port", "9001"], ["x", "--host", "0.0.0.0"]):
        monkeypatch.setattr("sys.argv", argv)
        devserver.main("trainer", 8003)
    assert binds == [("127.0.0.1", 8003), ("127.0.0.1", 9001), ("0.0.0.0", 8003)]


@pytest.mark.anyio
async def test_api_docs_load_nothing_from_the_internet_and_declare_the_bearer_scheme(
        tmp_path: Path) -> None:
    from services.gateway.app import create_app as create_gateway
    from shared.settings import GatewaySettings

    gateway = create_gateway(GatewaySettings(log_json=False, environment="test"))
    transport = httpx.ASGITransport(app=gateway)  # the pages need no started lifespan
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        for page in ("/docs", "/redoc"):
            html = (await client.get(page)).text
            urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", html)
            assert urls and "http" not in html.replace("http-equiv", ""), (page, html)
            for url in urls:
                asset = await client.get(url)
                assert asset.status_code == 200 and asset.content, url
        assert (await client.get("/docs/oauth2-redirect")).status_code == 200

    schema = gateway.openapi()
    assert schema["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": schema["components"][
            "securitySchemes"]["bearer"]["description"]}
    paths = schema["paths"]
    assert paths["/v1/models/{name}/predict"]["post"]["security"] == [{"bearer": []}]
    assert paths["/v1/jobs"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in paths["/health"]["get"]
    trainer = trainer_app(trainer_settings("sqlite://", tmp_path), "http://127.0.0.1:9").openapi()
    assert trainer["paths"]["/v1/models/{name}/promote"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in trainer["paths"]["/v1/jobs"]["get"]
