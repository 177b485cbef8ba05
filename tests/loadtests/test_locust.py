"""Short headless Locust runs (loadtests/run.sh) against the real services: zero failures."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.classifier.app import create_app as create_classifier
from services.gateway.app import create_app as create_gateway
from services.gateway.auth import KeyStore
from shared.clients.embedder import AsyncEmbedderClient
from shared.db import make_engine, session_factory
from shared.settings import ClassifierSettings, EmbedderClientSettings, GatewaySettings
from tests.classifier.helpers import publish
from tests.conftest import ROOT, ServerThread, clinc_rows

pytestmark = pytest.mark.model
LOCUST = shutil.which("locust", path=str(Path(sys.executable).parent))


def run(user: str, host: str, out: Path, **env: str) -> dict[str, str]:
    assert LOCUST, "locust is missing: install the test extras"
    result = subprocess.run(["bash", "loadtests/run.sh", user, host, "4", "6s", str(out)],
                            cwd=ROOT, env=os.environ | env | {"LOCUST": LOCUST},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(out / f"{user}_stats.csv", newline="") as f:
        total = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    assert (out / f"{user}.html").exists()
    return total


def test_embedder_scenario(embedder_url: str, tmp_path: Path) -> None:
    total = run("EmbedderUser", embedder_url, tmp_path)
    assert int(total["Request Count"]) > 10 and total["Failure Count"] == "0"


@pytest.fixture
def gateway_url(pg_url: str, tmp_path: Path, embedder_url: str) -> Iterator[tuple[str, str]]:
    rows = clinc_rows(labels=5, per_label=15)
    publish(pg_url, tmp_path / "artifacts", "intents", rows, embedder_url)
    publish(pg_url, tmp_path / "artifacts", "moods", rows[::-1], embedder_url)
    engine = make_engine(pg_url)
    key = KeyStore(session_factory(engine)).create("locust", ["predict"])
    engine.dispose()
    classifier = create_classifier(
        ClassifierSettings(database_url=pg_url, artifact_store=str(tmp_path / "artifacts"),
                           log_json=False, environment="test"),
        embedder=AsyncEmbedderClient(EmbedderClientSettings(url=embedder_url)))
    with ServerThread(classifier) as c:
        gateway = create_gateway(GatewaySettings(
            database_url=pg_url, classifier_urls=c.url, log_dir=str(tmp_path / "inference-log"),
            log_json=False, environment="test"))
        with ServerThread(gateway) as g:
            yield g.url, key


def test_gateway_scenario(gateway_url: tuple[str, str], tmp_path: Path) -> None:
    url, key = gateway_url
    total = run("GatewayUser", url, tmp_path / "out", LOCUST_API_KEY=key,
                LOCUST_MODELS="intents,moods", LOCUST_FEEDBACK_RATIO="0.2")
    assert int(total["Request Count"]) > 10 and total["Failure Count"] == "0"
