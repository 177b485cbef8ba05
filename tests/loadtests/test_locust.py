"""Short headless Locust runs (loadtests/run.sh) against the real services: zero failures,
also with a canary and a shadow running (RolloutUser checks every answer's version and role),
and the rollout checks do count a broken promise as a failure."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from loadtests.rollout_checks import Rollout
from services.classifier.app import create_app as create_classifier
from services.gateway.app import create_app as create_gateway
from services.gateway.auth import KeyStore
from shared.clients.embedder import AsyncEmbedderClient
from shared.contracts.gateway import Prediction, PredictResponse
from shared.contracts.rollout import Candidate, Role
from shared.db import make_engine, session_factory
from shared.db.models import Inference
from shared.registry import Registry
from shared.settings import ClassifierSettings, EmbedderClientSettings, GatewaySettings
from tests.classifier.helpers import publish
from tests.conftest import ROOT, ServerThread, clinc_rows

pytestmark = pytest.mark.model
LOCUST = shutil.which("locust", path=str(Path(sys.executable).parent))


def run(user: str, host: str, out: Path, users: int = 4, **env: str) -> dict[str, str]:
    assert LOCUST, "locust is missing: install the test extras"
    result = subprocess.run(["bash", "loadtests/run.sh", user, host, str(users), "6s", str(out)],
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


@pytest.fixture(params=["plain", "rollouts"])
def gateway_url(request: pytest.FixtureRequest, pg_url: str, tmp_path: Path,
                embedder_url: str) -> Iterator[tuple[str, str, bool]]:
    """``intents`` and ``moods`` in production; with ``rollouts``, a canary of ``intents`` v2
    on half the users and a shadow of ``moods`` v2, which knows other labels."""
    rows = clinc_rows(labels=5, per_label=15)
    publish(pg_url, tmp_path / "artifacts", "intents", rows, embedder_url)
    publish(pg_url, tmp_path / "artifacts", "moods", rows[::-1], embedder_url)
    engine = make_engine(pg_url)
    key = KeyStore(session_factory(engine)).create("locust", ["predict"])
    if request.param == "rollouts":
        publish(pg_url, tmp_path / "artifacts", "intents", rows[::2], embedder_url,
                promote=False)
        publish(pg_url, tmp_path / "artifacts", "moods", clinc_rows(labels=8, per_label=15)[75:],
                embedder_url, promote=False)
        registry = Registry(session_factory(engine))
        registry.set_candidate("intents", Candidate(version=2, mode="canary", share=0.5))
        registry.set_candidate("moods", Candidate(version=2, mode="shadow", share=1.0))
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
            yield g.url, key, request.param == "rollouts"


@pytest.mark.parametrize("user", ["GatewayUser", "RolloutUser"])
def test_gateway_scenario(gateway_url: tuple[str, str, bool], user: str, pg_url: str,
                          tmp_path: Path) -> None:
    url, key, rollouts = gateway_url
    total = run(user, url, tmp_path / "out", users=8, LOCUST_API_KEY=key,
                LOCUST_MODELS="intents,moods", LOCUST_FEEDBACK_RATIO="0.2")
    assert int(total["Request Count"]) > 10 and total["Failure Count"] == "0"
    if rollouts:  # the canary took users 0, 1, 3, 6 and 7 of user-0..user-7 (numbered keys:
        # the same every run), and the shadow ran beside moods' production: the checks had
        # something to check
        assert {"canary", "shadow"} <= logged_roles(pg_url)


def logged_roles(pg_url: str) -> set[str]:
    """The roles of the logged rows, once the log has shipped some candidate's rows."""
    engine = make_engine(pg_url)
    try:
        for _ in range(50):
            with engine.connect() as c:
                roles = set(c.scalars(select(Inference.role).distinct()))
            if {"canary", "shadow"} <= roles:
                break
            time.sleep(0.2)
        return roles
    finally:
        engine.dispose()


def test_broken_rollout_promises_are_failures() -> None:
    """The checks RolloutUser applies to each answer, on answers a broken gateway could give."""
    def answer(version: int, role: Role, label: str = "a") -> PredictResponse:
        return PredictResponse(model="m", version=version, role=role, predictions=[
            Prediction(inference_id="0" * 32, label=label, probability=0.9, top=[],
                       abstained=False)])

    canary = Rollout(1, Candidate(version=2, mode="canary", share=0.5), frozenset())
    assert canary.violation(answer(2, "canary"), on_canary=False) is None
    assert canary.violation(answer(1, "production"), on_canary=False) is None
    assert "not sticky" in str(canary.violation(answer(1, "production"), on_canary=True))
    assert "the canary is v2" in str(canary.violation(answer(3, "canary"), on_canary=False))
    shadow = Rollout(1, Candidate(version=2, mode="shadow", share=1.0), frozenset({"z"}))
    assert shadow.violation(answer(1, "production"), on_canary=False) is None
    assert "role 'shadow'" in str(shadow.violation(answer(2, "shadow"), on_canary=False))
    assert "production is v1" in str(shadow.violation(answer(2, "production"), False))
    assert "label 'z'" in str(shadow.violation(answer(1, "production", "z"), False))
