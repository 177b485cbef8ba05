"""Property-based fuzzing (Schemathesis) of the OpenAPI of the gateway, the embedder, the
trainer and the classifier, each running for real over HTTP (real model, real PostgreSQL).

Every generated request, valid or not, must get an answer that is not a 5xx, carries a
status code and content type the schema documents, and matches the documented body schema.
Examples per operation are bounded (``FUZZ_EXAMPLES``, default 25) to keep CI short, and are
derandomized: the same examples every run, so CI cannot pass on one run and fail on the next
(:mod:`tests.fuzz.config`). ``scripts/fuzz`` explores instead: new examples each run, 1,000 per
operation; a failure it finds is replayed with the seed Hypothesis prints
(``scripts/fuzz --hypothesis-seed=<seed>``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from services.classifier.app import create_app as create_classifier
from services.embedder.app import create_app as create_embedder
from services.embedder.backends import Backend
from services.gateway.app import create_app as create_gateway
from services.gateway.auth import KeyStore
from services.trainer.app import create_app as create_trainer
from shared.clients.embedder import AsyncEmbedderClient
from shared.db import make_engine, session_factory
from shared.db.migrate import upgrade
from shared.settings import ClassifierSettings, EmbedderClientSettings, GatewaySettings
from tests.classifier.helpers import publish
from tests.conftest import ServerThread, clinc_rows, settings as embedder_settings
from tests.fuzz.config import fuzz_settings
from tests.trainer.helpers import trainer_app, trainer_settings

pytestmark = pytest.mark.model

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
FUZZ = fuzz_settings(os.environ)


@pytest.fixture(scope="module")
def fuzz_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    from tests.conftest import pg_schema
    with pg_schema() as url:
        yield url, tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def embedder_url_(real_backend: Backend) -> Iterator[str]:
    app = create_embedder(embedder_settings(max_texts_per_request=16, max_chars_per_text=512),
                          backend=real_backend)
    with ServerThread(app) as server:
        yield server.url


@pytest.fixture(scope="module")
def trainer_url(fuzz_db: tuple[str, Path], embedder_url: str) -> Iterator[Any]:
    db, work = fuzz_db
    # No worker: a generated CSV that happens to be valid is queued, never trained.
    app = trainer_app(trainer_settings(db, work, run_worker=False, max_upload_bytes=65536),
                      embedder_url)
    with ServerThread(app) as server:
        yield server.url


@pytest.fixture(scope="module")
def serving(fuzz_db: tuple[str, Path], embedder_url: str) -> Iterator[Any]:
    db, work = fuzz_db
    publish(db, work / "artifacts", "intents", clinc_rows(labels=3, per_label=10), embedder_url)
    engine = make_engine(db)
    upgrade(engine)
    key = KeyStore(session_factory(engine)).create("fuzzer", ["predict", "admin"])
    classifier = create_classifier(
        ClassifierSettings(database_url=db, artifact_store=str(work / "artifacts"),
                           log_json=False, environment="test"),
        embedder=AsyncEmbedderClient(EmbedderClientSettings(url=embedder_url)))
    with ServerThread(classifier) as c:
        gateway = create_gateway(GatewaySettings(
            database_url=db, classifier_urls=c.url, log_dir=str(work / "inference-log"),
            log_json=False, environment="test", trainer_url="http://127.0.0.1:9"))
        with ServerThread(gateway) as server:
            yield {"gateway": server.url, "classifier": c.url,
                   "auth": {"Authorization": f"Bearer {key}"}}
    engine.dispose()


def schema(app: Any) -> Any:
    """The app's OpenAPI, built without starting it (schemas load at collection time)."""
    return schemathesis.openapi.from_dict(app.openapi())


EMBEDDER = schema(create_embedder(embedder_settings()))
TRAINER = schema(create_trainer(trainer_settings("sqlite://", Path("var"))))  # no client yet
# Training routes and the training report only forward to the trainer, fuzzed on its own.
CLASSIFIER = schema(create_classifier(ClassifierSettings(log_json=False, environment="test")))
GATEWAY = schema(create_gateway(GatewaySettings(log_json=False, environment="test"))
                 ).exclude(path_regex=r"^/v1/jobs|/versions/\{version\}/report$")


@EMBEDDER.parametrize()
@FUZZ
def test_embedder(case: schemathesis.Case, embedder_url_: str) -> None:
    case.call_and_validate(base_url=embedder_url_, checks=CHECKS)


@TRAINER.parametrize()
@FUZZ
def test_trainer(case: schemathesis.Case, trainer_url: str) -> None:
    case.call_and_validate(base_url=trainer_url, checks=CHECKS)


@GATEWAY.parametrize()
@FUZZ
def test_gateway(case: schemathesis.Case, serving: dict[str, Any]) -> None:
    if "name" in case.path_parameters and len(str(case.body)) % 2:
        case.path_parameters["name"] = "intents"  # half the cases reach the real model
    case.call_and_validate(base_url=serving["gateway"], headers=serving["auth"], checks=CHECKS)


@CLASSIFIER.parametrize()
@FUZZ
def test_classifier(case: schemathesis.Case, serving: dict[str, Any]) -> None:
    """Internal, but it should answer garbage from a misbehaving caller just as well."""
    if "model" in case.path_parameters and len(str(case.body)) % 2:
        case.path_parameters["model"] = "intents"
    case.call_and_validate(base_url=serving["classifier"], checks=CHECKS)
