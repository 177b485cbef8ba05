"""Training that doesn't surprise, on the real trainer API, real PostgreSQL and real embedder:
dropped labels named and never silently promoted, uploads deleted once their job ends, each
version keeping its training rows, and retraining from feedback on top of them."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from sqlalchemy import Engine

from services.cli.train import print_report
from shared.artifacts import ArtifactStore
from shared.contracts.training import Job
from shared.db import make_engine
from shared.db.models import Inference
from shared.db.types import utcnow
from tests.conftest import clinc_rows, running, to_csv
from tests.trainer.helpers import submit, trainer_app, trainer_settings, wait_job

pytestmark = [pytest.mark.anyio, pytest.mark.model]

ROWS = clinc_rows(labels=3, per_label=10)
LABELS = sorted({label for _, label in ROWS})


def stored_rows(tmp_path: Path, artifact_uri: str) -> list[tuple[str, str]]:
    files = ArtifactStore(str(tmp_path / "artifacts")).read_version(artifact_uri)
    return [(r["text"], r["label"]) for r in
            csv.DictReader(io.StringIO(files["training_rows.csv"].decode()))]


def uploads(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "artifacts" / "_uploads"
    return list(folder.iterdir()) if folder.exists() else []


async def test_a_version_that_lost_a_label_is_not_promoted_and_says_why(
        pg_url: str, tmp_path: Path, embedder_url: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    lost = LABELS[2]
    fewer = [r for r in ROWS if r[1] != lost]
    async with running(trainer_app(trainer_settings(pg_url, tmp_path), embedder_url)) as client:
        first = await wait_job(client, (await submit(client, to_csv(ROWS), head="logreg",
                                                     cv_folds=3)).json()["id"])
        assert first["promoted"] is True, first["error"]
        assert first["report"]["promotion"]["reason"].startswith("promoted: the first version")
        response = await submit(client, to_csv(fewer), head="logreg", cv_folds=3)
        assert lost not in response.json()["report"]["data"]["class_counts"]
        second = await wait_job(client, response.json()["id"])
        assert second["status"] == "succeeded", second["error"]
        reason = (f"not promoted: labels {lost} of production version 1 are missing (promote "
                  "it by hand if that is intended)")
        assert second["promoted"] is False and second["report"]["promotion"] == {
            "promoted": False, "reason": reason}
        assert (await client.get("/v1/models/intents")).json()["production_version"] == 1

        # Each version keeps the rows it learned from; the uploads are gone.
        model = (await client.get("/v1/models/intents")).json()
        assert sorted(stored_rows(tmp_path, model["versions"][0]["artifact_uri"])) == sorted(ROWS)
        assert uploads(tmp_path) == []

    print_report(Job.model_validate(second))
    printed = capsys.readouterr().out
    assert reason in printed


async def test_retraining_from_feedback_adds_it_to_the_production_data(
        pg_url: str, tmp_path: Path, embedder_url: str) -> None:
    engine = make_engine(pg_url)
    async with running(trainer_app(trainer_settings(pg_url, tmp_path), embedder_url)) as client:
        none_yet = await client.post("/v1/jobs/feedback", json={"name": "intents"})
        assert none_yet.status_code == 422
        message = none_yet.json()["error"]["message"]
        assert "no inferences of model 'intents' have feedback" in message
        assert (await client.get("/v1/jobs")).json()["data"] == []

        first = await wait_job(client, (await submit(client, to_csv(ROWS), head="logreg",
                                                     cv_folds=3)).json()["id"])
        assert first["status"] == "succeeded", first["error"]
        corrected_text = ROWS[0][0]  # a training text of LABELS[0], corrected to LABELS[1]
        new_rows = clinc_rows("test.csv", labels=3, per_label=2)
        add_feedback(engine, [(corrected_text, LABELS[1])] + new_rows)

        response = await client.post("/v1/jobs/feedback", json={
            "name": "intents", "options": {"cv_folds": 3, "head": "logreg"}})
        assert response.status_code == 202, response.text
        data = response.json()["report"]["data"]
        assert data["source"] == {"kind": "feedback", "model": "intents", "feedback_rows": 7,
                                  "base_version": 1, "base_rows": 30, "base_rows_corrected": 1}
        assert data["rows_used"] == 30 - 1 + 7
        job = await wait_job(client, response.json()["id"])
        assert job["status"] == "succeeded", job["error"]
        assert job["model"]["version"] == 2 and job["report"]["promotion"]["reason"]

        version = (await client.get("/v1/models/intents/versions/2")).json()
        rows = stored_rows(tmp_path, version["artifact_uri"])
        assert (corrected_text, LABELS[1]) in rows and (corrected_text, LABELS[0]) not in rows
        assert set(new_rows) <= set(rows) and len(rows) == 36
    engine.dispose()


async def test_feedback_that_cannot_be_trained_is_refused_before_a_job(
        pg_url: str, tmp_path: Path) -> None:
    """No production version to add to, and feedback on one label only: 422, no job (so no
    embedder is needed)."""
    engine = make_engine(pg_url)
    app = trainer_app(trainer_settings(pg_url, tmp_path), "http://127.0.0.1:9")
    async with running(app) as client:
        # (the trainer's start-up migrated the schema)
        add_feedback(engine, [(text, LABELS[0]) for text, _ in ROWS[:5]])
        refused = await client.post("/v1/jobs/feedback", json={"name": "intents"})
        assert refused.status_code == 422
        assert "need at least 2 labels" in refused.json()["error"]["message"]
        assert (await client.get("/v1/jobs")).json()["data"] == []
    engine.dispose()


def add_feedback(engine: Engine, rows: list[tuple[str, str]]) -> None:
    """Logged inferences of ``intents`` v1 that received feedback ``(text, true label)``."""
    now = utcnow()
    with engine.begin() as c:
        c.execute(Inference.__table__.insert(), [
            {"id": f"{i:032x}", "created_at": now, "model_name": "intents", "model_version": 1,
             "head_type": "logreg", "embedder_model": "m", "input_text": text, "label": "x",
             "probability": 0.5, "top_k": {}, "abstained": False, "feedback_label": label,
             "feedback_at": now} for i, (text, label) in enumerate(rows)])
