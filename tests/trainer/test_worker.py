"""Workers losing a job: killed, stopped, or facing an embedder that is not up.

Several worker processes on a real Redis queue; one is killed mid-job (SIGKILL). The job must
not stay ``running``: the trainer's reaper puts it back to ``queued`` with the reason, the
broker hands the message to the next worker, and the job finishes on attempt 2. A worker that
stops, or an embedder that is starting, costs the job no attempt and logs no error.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from services.embedder.app import create_app as create_embedder
from shared.db import make_engine
from shared.db.models import TrainingJob
from tests.conftest import ROOT, ServerThread, clinc_rows, running, settings, to_csv
from tests.embedder.fakes import SlowBackend
from tests.trainer.helpers import submit, trainer_app, trainer_settings, wait_job

pytestmark = pytest.mark.anyio


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "services.trainer.worker", "--processes", "1", "--threads", "1"],
            env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def kill(worker: subprocess.Popen[bytes]) -> None:
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(10)


async def test_worker_killed_mid_job_is_retried_by_another(
        pg_url: str, redis_url: str, tmp_path: Path) -> None:
    namespace = f"polyhead-test-{uuid.uuid4().hex[:8]}"
    # A slow (fake) embedder, so the job is still embedding when its worker dies.
    slow = SlowBackend(delay_s=0.4)
    with ServerThread(create_embedder(settings(backend="fake", max_batch_size=32,
                                               max_batch_tokens=4096), backend=slow)) as embedder:
        common = {"queue_url": redis_url, "queue_namespace": namespace, "heartbeat_s": 0.5}
        api = trainer_settings(pg_url, tmp_path, run_worker=False, stale_after_s=2, **common)
        env = os.environ | {
            "TRAINER_DATABASE_URL": pg_url, "TRAINER_ARTIFACT_STORE": str(tmp_path / "artifacts"),
            "TRAINER_QUEUE_URL": redis_url, "TRAINER_QUEUE_NAMESPACE": namespace,
            "TRAINER_QUEUE_HEARTBEAT_TIMEOUT_MS": "1500",
            "TRAINER_QUEUE_MAINTENANCE_CHANCE": "1000000", "TRAINER_HEARTBEAT_S": "0.5",
            "TRAINER_THREADS": "1", "EMBEDDER_URL": embedder.url, "LOG_JSON": "false",
            "PYTHONPATH": str(ROOT)}
        log = tmp_path / "workers.log"
        first = start_worker(env, log)
        second: subprocess.Popen[bytes] | None = None
        try:
            async with running(trainer_app(api, embedder.url)) as client:
                rows = clinc_rows(labels=4, per_label=60)
                submitted = await submit(client, to_csv(rows), head="logreg", cv_folds=3)
                job_id = submitted.json()["id"]
                url = f"/v1/jobs/{job_id}"
                while (job := (await client.get(url)).json())["stage"] != "embedding":
                    assert job["status"] != "failed", job["error"]
                    await asyncio.sleep(0.05)
                kill(first)

                # The reaper notices the silence and says so.
                while (job := (await client.get(url)).json())["status"] == "running":
                    await asyncio.sleep(0.2)
                assert job["status"] == "queued", job
                assert "was lost during 'embedding'" in job["error"]

                slow.delay_s = 0.0  # slow only to be caught mid-job; the retry may run fast
                second = start_worker(env, log)
                job = await wait_job(client, job_id, timeout_s=120)
                assert job["status"] == "succeeded", (job["error"], log.read_text()[-3000:])
                assert job["attempts"] == 2 and job["model"]["version"] == 1
        finally:
            for worker in (first, second):
                if worker is not None and worker.poll() is None:
                    kill(worker)


class Records(logging.Handler):
    """Log records of the job worker (dramatiq's and the pipeline's), kept for assertions."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.loggers = [logging.getLogger(n) for n in ("dramatiq", "services.trainer.pipeline")]
        for logger in self.loggers:
            logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def close(self) -> None:
        for logger in self.loggers:
            logger.removeHandler(self)
        super().close()

    def errors(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= logging.ERROR]


@pytest.fixture
def worker_log() -> Iterator[Records]:
    records = Records()
    yield records
    records.close()


async def test_a_stopping_worker_puts_its_job_back_without_using_an_attempt(
        pg_url: str, tmp_path: Path, worker_log: Records) -> None:
    slow = SlowBackend(delay_s=0.3)
    with ServerThread(create_embedder(settings(backend="fake"), backend=slow)) as embedder:
        api = trainer_settings(pg_url, tmp_path, embed_batch=4)
        async with running(trainer_app(api, embedder.url)) as client:
            rows = clinc_rows(labels=3, per_label=12)
            job_id = (await submit(client, to_csv(rows), head="logreg", cv_folds=3)).json()["id"]
            while (job := (await client.get(f"/v1/jobs/{job_id}")).json())["stage"] != "embedding":
                assert job["status"] != "failed", job["error"]
                await asyncio.sleep(0.02)
        # The trainer stopped (its worker with it) in the middle of the job.
        engine = make_engine(pg_url)
        with Session(engine) as s:
            row = s.get(TrainingJob, job_id)
            assert row is not None
            assert (row.status, row.stage, row.attempts) == ("queued", "queued (worker stopped)", 0)
        engine.dispose()
        slow.delay_s = 0.0  # slow only to be caught mid-job (the 400 nonsense texts too)
        async with running(trainer_app(api, embedder.url)) as client:  # sent again at start
            job = await wait_job(client, job_id, timeout_s=60)
    assert job["status"] == "succeeded" and job["attempts"] == 1, job
    assert worker_log.errors() == []


async def test_an_embedder_still_starting_costs_no_attempt(
        tmp_path: Path, worker_log: Records) -> None:
    embedder = ServerThread(create_embedder(settings(backend="fake")))  # not started yet
    api = trainer_settings(f"sqlite:///{tmp_path}/db.sqlite", tmp_path, max_attempts=1)
    async with running(trainer_app(api, embedder.url)) as client:
        rows = clinc_rows(labels=3, per_label=12)
        job_id = (await submit(client, to_csv(rows), head="logreg", cv_folds=3)).json()["id"]
        waits = 0
        while waits < 2:  # it was tried, and put back, at least twice
            job = (await client.get(f"/v1/jobs/{job_id}")).json()
            assert job["status"] in ("queued", "running") and job["attempts"] <= 1, job
            waits = sum("not counted as an attempt" in r.getMessage() for r in worker_log.records)
            await asyncio.sleep(0.1)
        assert job["stage"] in ("waiting for the embedder", "validating", "embedding"), job
        with embedder:
            job = await wait_job(client, job_id, timeout_s=60)
    assert job["status"] == "succeeded" and job["attempts"] == 1, job
    assert worker_log.errors() == []
