"""Fixtures shared by the whole suite: real Redis, the real model (loaded once), app clients."""

from __future__ import annotations

import csv
import importlib.util
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import redis
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from services.embedder.backends import Backend
from shared.http import wait_ready
from shared.settings import EmbedderSettings

ROOT = Path(__file__).resolve().parents[1]
CLINC = ROOT / "data" / "clinc150"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def clinc_texts(name: str = "test.csv", limit: int | None = None) -> list[str]:
    with open(CLINC / name, newline="", encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    return texts[:limit] if limit else texts


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis the suite needs (scripts/test starts it); a clear failure if it is down."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL} ({exc}); start it (see README)")
    return REDIS_URL


@pytest.fixture
def namespace() -> str:
    """A cache namespace of our own, so tests never see each other's entries."""
    return f"polyhead-test:{uuid.uuid4().hex}"


@pytest.fixture(scope="session")
def real_backend() -> Backend:
    """The real all-MiniLM-L6-v2 model, loaded once for the session."""
    from services.embedder.backends import load_backend
    return load_backend(EmbedderSettings(threads=2))


def settings(**overrides: Any) -> EmbedderSettings:
    """Test settings: no Redis unless asked, plain-text logs."""
    values: dict[str, Any] = {"redis_url": None, "log_json": False, "environment": "test"}
    return EmbedderSettings(**(values | overrides))


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan, wait for /ready, yield an HTTP client talking to it in-process."""
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://embedder") as client:
            deadline = time.monotonic() + 60
            while (await client.get("/ready")).status_code != 200:
                assert time.monotonic() < deadline, (await client.get("/ready")).text
                await _sleep(0.02)
            yield client


async def _sleep(seconds: float) -> None:
    import asyncio
    await asyncio.sleep(seconds)


def script_module(relative: str) -> ModuleType:
    """A script of the repository outside any package (``deploy/check_static.py``,
    ``scripts/lock_drift.py``), loaded as a module so a test can call its functions."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def metric(exposition: str, name: str, **labels: str) -> float | None:
    """The sum of the samples called ``name`` (``..._total``, ``..._count``, a gauge's name)
    whose labels include ``labels``, in a /metrics answer; None when there is no such sample
    (a metric declared but never observed prints its name and no sample)."""
    values = [sample.value for family in text_string_to_metric_families(exposition)
              for sample in family.samples
              if sample.name == name and labels.items() <= sample.labels.items()]
    return sum(values) if values else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisProcess:
    """A real redis-server of the test's own, which the test may stop and start (outages)."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._tmp = tmp
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (see README)"
        self._proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self._tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise AssertionError("private redis-server did not start")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path)
    server.start()
    yield server
    server.stop()


# Databases and services for the trainer, registry and (later) gateway tests ---------------------

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://root@127.0.0.1:5432/test")


@contextmanager
def pg_schema() -> Iterator[str]:
    """A PostgreSQL schema of our own on the real server (dropped afterwards): its URL."""
    from sqlalchemy import text

    from shared.db import make_engine

    schema = f"t_{uuid.uuid4().hex[:12]}"  # made here, never from input: safe to format
    admin = make_engine(PG_URL)
    try:
        with admin.begin() as c:
            c.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:  # noqa: BLE001 - any reason fails the run, and says which
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL} ({exc}); start it (see README)")
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        PostgresOutage().start()  # a fault test may have left it stopped
        with admin.begin() as c:
            c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL schema of the test's own on the real server (dropped afterwards)."""
    with pg_schema() as url:
        yield url


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """An engine on the test's own PostgreSQL schema, migrated to the latest revision."""
    from shared.db import make_engine
    from shared.db.migrate import upgrade

    engine = make_engine(pg_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def bare_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty database of the test's own (not migrated), once on PostgreSQL
    and once on SQLite."""
    from shared.db import make_engine

    url = request.getfixturevalue("pg_url") if request.param == "postgresql" \
        else f"sqlite:///{tmp_path}/db.sqlite"
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def migrated_engine(bare_engine: Engine) -> Engine:
    """``bare_engine`` migrated to the latest revision (once on PostgreSQL, once on SQLite)."""
    from shared.db.migrate import upgrade

    upgrade(bare_engine)
    return bare_engine


class ServerThread:
    """A real uvicorn server on a free port, in a thread of the test process."""

    def __init__(self, app: FastAPI) -> None:
        import threading

        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                   log_config=None, access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        wait_ready(self.url, timeout_s=60, alive=self.thread.is_alive, interval_s=0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture(scope="session")
def embedder_url(real_backend: Backend) -> Iterator[str]:
    """The real embedder (real model) over real HTTP, for the whole session."""
    from services.embedder.app import create_app

    with ServerThread(create_app(settings(), backend=real_backend)) as server:
        yield server.url


def clinc_rows(name: str = "train.csv", *, labels: int = 6, per_label: int = 25
               ) -> list[tuple[str, str]]:
    """A small, balanced CLINC150 slice: the first ``labels`` intents, ``per_label`` rows each."""
    with open(CLINC / name, newline="", encoding="utf-8") as f:
        rows = [(r["text"], r["label"]) for r in csv.DictReader(f)]
    chosen = sorted({label for _, label in rows})[:labels]
    out: list[tuple[str, str]] = []
    for label in chosen:
        out += [r for r in rows if r[1] == label][:per_label]
    return out


def to_csv(rows: list[tuple[str, str]], header: tuple[str, str] = ("text", "label"),
           delimiter: str = ",") -> bytes:
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode()


class PostgresOutage:
    """Stops and starts the real local PostgreSQL cluster (fault tests; see README)."""

    @staticmethod
    def _cluster() -> list[str]:
        version = sorted(os.listdir("/etc/postgresql"))[0]
        return [version, "main"]

    def stop(self) -> None:
        subprocess.run(["pg_ctlcluster", *self._cluster(), "stop", "-m", "fast"], check=True,
                       capture_output=True)

    @staticmethod
    def ready() -> bool:
        return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"]).returncode == 0

    def start(self) -> None:
        if self.ready():
            return
        # No check: "already running" is fine; readiness below is what counts.
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *self._cluster(), "start"],
                       check=False, capture_output=True)
        for _ in range(100):
            if self.ready():
                return
            time.sleep(0.1)
        raise AssertionError("PostgreSQL did not come back")


@pytest.fixture
def postgres_outage() -> Iterator[PostgresOutage]:
    outage = PostgresOutage()
    try:
        yield outage
    finally:
        outage.start()  # whatever happened, leave it running for the rest of the suite


@contextmanager
def small_disk(folder: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of ``size`` (e.g. ``64k``) mounted at ``folder``: writes past it fail with
    ENOSPC, as on a full disk (the tests run as root)."""
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                   check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=True)
