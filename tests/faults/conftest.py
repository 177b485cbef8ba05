"""One serving path for the fault tests: embedder (real model, its own Redis), two classifier
replicas, a gateway, a published head and an API key, all real processes on loopback.

Package-scoped: starting it costs ~15-18 s, once for every module here. Each test breaks one
part and leaves it healthy again (``Stack.heal``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from services.gateway.auth import KeyStore
from shared.db import make_engine, session_factory
from shared.db.migrate import upgrade
from shared.db.models import Inference
from tests.classifier.helpers import publish
from tests.conftest import RedisProcess, clinc_rows, clinc_texts, pg_schema
from tests.faults.stack import Service

ROWS = clinc_rows(labels=6, per_label=20)


@dataclass
class Stack:
    db: str
    engine: Engine
    redis: RedisProcess
    embedder: Service
    classifiers: list[Service]
    gateway: Service
    key: str
    log_dir: Path
    texts: list[str]

    def gateway_env(self) -> dict[str, str]:
        return self.gateway.env

    def logged_ids(self) -> set[str]:
        with self.engine.connect() as c:
            return set(c.scalars(select(Inference.id)))

    def heal(self) -> None:
        """Whatever a test broke, running again (and ready) before the next one."""
        for service in [self.embedder, *self.classifiers, self.gateway]:
            if not service.alive:
                service.start()


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("stack")
    with pg_schema() as db:
        redis = RedisProcess(work)
        redis.start()
        engine = make_engine(db)
        upgrade(engine)
        embedder = Service("embedder", {"EMBEDDER_REDIS_URL": redis.url, "EMBEDDER_THREADS": "1",
                                        "EMBEDDER_REDIS_RETRY_AFTER_S": "0.5"}, work)
        services = [embedder]
        try:
            embedder.start()
            publish(db, work / "artifacts", "intents", ROWS, embedder.url)
            client_env = {"DATABASE_URL": db, "ARTIFACT_STORE": str(work / "artifacts"),
                          "EMBEDDER_URL": embedder.url, "EMBEDDER_CLIENT_BREAKER_TTL_S": "2"}
            classifiers = [Service("classifier", client_env, work) for _ in range(2)]
            services += classifiers
            for c in classifiers:
                c.start()
            key = KeyStore(session_factory(engine)).create("faults", ["predict"])
            log_dir = work / "inference-log"
            gateway = Service("gateway", {
                "DATABASE_URL": db, "GATEWAY_CLASSIFIER_URLS": ",".join(c.url for c in classifiers),
                "GATEWAY_LOG_DIR": str(log_dir), "GATEWAY_LOG_RETRY_S": "0.5",
                # A stop with the database down gives up shipping after 5 s, not 20.
                "GATEWAY_LOG_DRAIN_S": "5", "GATEWAY_EJECTION_S": "2"}, work)
            services.append(gateway)
            gateway.start()
            yield Stack(db, engine, redis, embedder, classifiers, gateway, key, log_dir,
                        clinc_texts("test.csv", limit=300))
        finally:
            for service in reversed(services):
                service.kill()
            redis.stop()
            engine.dispose()
