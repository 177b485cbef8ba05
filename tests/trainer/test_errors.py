"""Bad uploads and dead dependencies: a clear 4xx before any job, or a job that fails with a
reason. Never a 500, never a job stuck in ``running``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from services.trainer.runtime import build_runtime
from shared.clients.embedder import EmbedderClient
from shared.contracts.training import TrainOptions
from shared.db import make_engine
from shared.db.models import Inference
from shared.settings import EmbedderClientSettings
from tests.conftest import clinc_rows, free_port, running, to_csv
from tests.trainer.helpers import submit, trainer_app, trainer_settings, wait_job

pytestmark = pytest.mark.anyio

GOOD = to_csv(clinc_rows(labels=3, per_label=10))


@pytest.mark.parametrize(("body", "fields", "status", "message"), [
    ("text,label\ncaf\u00e9,a\n".encode("latin-1"), {}, 422, "not UTF-8"),
    (b"PK\x03\x04zip", {}, 422, "Excel (.xlsx)"),
    (b"phrase,intent\nhi,a\n", {}, 422, "missing column(s) 'text', 'label'"),
    (b"text,label\nhi,a\nho,a\n", {}, 422, "need at least 2 labels"),
    (GOOD, {"name": "Not A Valid Name!"}, 422, "name"),
    (GOOD, {"threshold": "high"}, 422, "threshold must be"),
    (GOOD, {"cv_folds": "many"}, 422, "cv_folds"),
    (GOOD, {"head": "svm"}, 422, "head"),
    (GOOD, {"cv_folds": "50"}, 422, "cv_folds"),
    (b"x" * 5000, {}, 413, "limit"),
])
async def test_bad_uploads_are_refused_before_any_job(
        tmp_path: Path, body: bytes, fields: dict[str, str], status: int, message: str) -> None:
    settings = trainer_settings(f"sqlite:///{tmp_path}/db.sqlite", tmp_path,
                                max_upload_bytes=4096)
    async with running(trainer_app(settings, "http://127.0.0.1:9")) as client:
        response = await submit(client, body, **fields)
        assert response.status_code == status, response.text
        assert message in response.json()["error"]["message"]
        assert (await client.get("/v1/jobs")).json()["data"] == []


async def test_unknown_job_and_model(tmp_path: Path) -> None:
    settings = trainer_settings(f"sqlite:///{tmp_path}/db.sqlite", tmp_path)
    async with running(trainer_app(settings, "http://127.0.0.1:9")) as client:
        for path in ("/v1/jobs/nope", "/v1/models/nope", "/v1/models/nope/versions/1"):
            response = await client.get(path)
            assert response.status_code == 404 and "nope" in response.json()["error"]["message"]


async def test_dead_embedder_fails_the_job_with_a_reason(tmp_path: Path) -> None:
    settings = trainer_settings(f"sqlite:///{tmp_path}/db.sqlite", tmp_path, max_attempts=2,
                                embedder_wait_s=0)  # no grace for an embedder starting up
    dead = f"http://127.0.0.1:{free_port()}"
    async with running(trainer_app(settings, dead)) as client:
        job = await wait_job(client, (await submit(client, GOOD)).json()["id"], timeout_s=60)
        assert job["status"] == "failed" and job["attempts"] == 2
        assert job["error"].startswith("gave up after 2 attempts")
        assert "unreachable" in job["error"] or "embedder" in job["error"]
    assert not list((tmp_path / "artifacts" / "_uploads").iterdir())  # failed for good: deleted


@pytest.mark.model
async def test_retrain_from_feedback_rows(tmp_path: Path, embedder_url: str) -> None:
    """The embedded default (SQLite, in-process worker) training from the inference log."""
    url = f"sqlite:///{tmp_path}/db.sqlite"
    settings = trainer_settings(url, tmp_path)
    async with running(trainer_app(settings, embedder_url)) as client:
        empty = await client.post("/v1/jobs/feedback", json={"name": "intents"})
        assert empty.status_code == 422  # refused before a job exists
        assert "no inferences of model 'intents'" in empty.json()["error"]["message"]

        with Session(make_engine(url)) as s:
            for i, (text, label) in enumerate(clinc_rows(labels=3, per_label=12)):
                s.add(Inference(id=f"inf{i}", model_name="intents", model_version=1,
                                head_type="logreg", embedder_model="m", input_text=text,
                                label="whatever", probability=0.5, top_k={},
                                feedback_label=label, feedback_at=datetime.now(UTC)))
            s.add(Inference(id="nofeedback", model_name="intents", model_version=1,
                            head_type="logreg", embedder_model="m", input_text="no label",
                            label="x", probability=0.5, top_k={}))
            s.commit()
        response = await client.post("/v1/jobs/feedback", json={"name": "intents",
                                                                 "options": {"cv_folds": 3}})
        job = await wait_job(client, response.json()["id"])
        assert job["status"] == "succeeded", job["error"]
        assert job["source"] == "feedback" and job["report"]["data"]["rows_used"] == 36
        assert job["report"]["data"]["source"] == {"kind": "feedback", "model": "intents",
                                                   "feedback_rows": 36}  # no production yet


@pytest.mark.model
async def test_jobs_left_unfinished_by_a_restart_run_again(tmp_path: Path,
                                                            embedder_url: str) -> None:
    """Embedded default: the in-memory queue forgets on restart; the job records do not."""
    settings = trainer_settings(f"sqlite:///{tmp_path}/db.sqlite", tmp_path)
    app = trainer_app(settings, embedder_url)
    async with running(app) as client:
        runtime = app.state.runtime
        uri = runtime.store.put("_uploads/orphan.csv", GOOD)
        runtime.jobs.create(job_id="orphan", model_name="intents", source="csv",
                            options={"cv_folds": 3, "head": "logreg"}, upload_uri=uri)
    async with running(trainer_app(settings, embedder_url)) as client:
        job = await wait_job(client, "orphan")
        assert job["status"] == "succeeded", job["error"]


@pytest.mark.parametrize(("source", "upload", "message"), [
    ("csv", b"text,label\nhi,a\nho,a\n", "need at least 2 labels"),
    ("csv", b"phrase,intent\nhi,a\n", "missing column(s) 'text', 'label'"),
    ("feedback", None, "no inferences of model 'intents' have feedback yet"),
])
def test_a_job_that_fails_for_its_data_is_not_retried(
        pg_url: str, tmp_path: Path, source: str, upload: bytes | None, message: str) -> None:
    """Data that turns out bad only when the job runs (an upload checked by an older trainer,
    feedback gone since the job was queued): failed on its first attempt, saying why, though
    attempts were left."""
    settings = trainer_settings(pg_url, tmp_path, max_attempts=3)
    runtime = build_runtime(settings, EmbedderClient(EmbedderClientSettings(
        url=f"http://127.0.0.1:{free_port()}")))  # never reached
    try:
        uri = runtime.store.put("_uploads/bad.csv", upload) if upload is not None else None
        job = runtime.jobs.create(model_name="intents", options=TrainOptions().model_dump(),
                                  source=source, upload_uri=uri)
        runtime.run(job.id)
        done = runtime.jobs.get(job.id)
    finally:
        runtime.close()
    assert (done.status, done.attempts) == ("failed", 1), done
    assert done.error is not None and message in done.error and "unexpected" not in done.error
