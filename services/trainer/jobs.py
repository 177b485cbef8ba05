"""Training-job records: the single source of truth for a job's state.

The queue carries only job ids; every state change lands here in its own short transaction,
so ``GET /v1/jobs/{id}`` and ops' SQL see progress live. A worker that dies stops its
heartbeat; :meth:`JobStore.reap_stale` puts such jobs back to ``queued`` (the queue redelivers
them) and :meth:`JobStore.start` fails a job for good once it has used up its attempts. A run
cut short by a stop or by the embedder starting or stopping is given its attempt back
(:meth:`JobStore.put_back`).
"""

from __future__ import annotations

import builtins  # `list` in JobStore is its method: the type is spelled builtins.list
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from shared.contracts.training import Job, ModelRef
from shared.db.models import TrainingJob
from shared.db.types import utcnow
from shared.errors import NotFound

HEADLINE = ("weighted_f1", "macro_f1", "accuracy")


class JobStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def create(self, *, model_name: str, options: dict[str, Any], source: str,
               filename: str | None = None, upload_uri: str | None = None,
               upload_bytes: int = 0, job_id: str | None = None) -> Job:
        row = TrainingJob(id=job_id or uuid.uuid4().hex, model_name=model_name, options=options,
                          source=source, filename=filename, upload_uri=upload_uri,
                          upload_bytes=upload_bytes)
        with self.sessions.begin() as s:
            s.add(row)
        return to_contract(row)

    def get(self, job_id: str, *, full: bool = True) -> Job:
        with self.sessions() as s:
            row = s.get(TrainingJob, job_id)
            if row is None:
                raise NotFound(f"unknown job {job_id!r}", param="job_id")
            return to_contract(row, full=full)

    def row(self, job_id: str) -> TrainingJob:
        with self.sessions() as s:
            row = s.get(TrainingJob, job_id)
            if row is None:
                raise NotFound(f"unknown job {job_id!r}", param="job_id")
            return row

    def list(self, *, limit: int = 50, status: str | None = None,
             model_name: str | None = None) -> list[Job]:
        query = select(TrainingJob).order_by(TrainingJob.created_at.desc()).limit(limit)
        if status:
            query = query.where(TrainingJob.status == status)
        if model_name:
            query = query.where(TrainingJob.model_name == model_name)
        with self.sessions() as s:
            return [to_contract(r, full=False) for r in s.scalars(query)]

    def start(self, job_id: str, *, worker: str, max_attempts: int) -> bool:
        """Claim a delivered job. False when it is already finished (a duplicate delivery) or
        has used up its attempts (then it is failed here, with the reason)."""
        with self.sessions.begin() as s:
            row = s.get(TrainingJob, job_id, with_for_update=True)
            if row is None or row.status in ("succeeded", "failed"):
                return False
            if row.attempts >= max_attempts:
                row.status, row.finished_at = "failed", utcnow()
                row.error = (f"gave up after {attempts(row.attempts)}; last problem: "
                             f"{row.error or 'the worker running it was lost'}")
                return False
            row.attempts += 1
            row.status, row.worker = "running", worker
            row.started_at = row.heartbeat_at = utcnow()
            return True

    def progress(self, job_id: str, stage: str, progress: float) -> None:
        self._update(job_id, stage=stage, progress=round(min(max(progress, 0.0), 1.0), 4),
                     heartbeat_at=utcnow())

    def heartbeat(self, job_id: str) -> None:
        self._update(job_id, heartbeat_at=utcnow())

    def succeed(self, job_id: str, *, version: int, promoted: bool, report: dict[str, Any]) -> None:
        self._update(job_id, status="succeeded", stage="done", progress=1.0, error=None,
                     model_version=version, promoted=promoted, report=report,
                     finished_at=utcnow())

    def fail(self, job_id: str, error: str, report: dict[str, Any] | None = None) -> None:
        values: dict[str, Any] = {"status": "failed", "error": error, "finished_at": utcnow()}
        if report is not None:
            values["report"] = report
        self._update(job_id, **values)

    def retry_later(self, job_id: str, error: str) -> None:
        self._update(job_id, status="queued", stage="waiting to retry", error=error)

    def put_back(self, job_id: str, *, stage: str, note: str) -> None:
        """A running job back to ``queued`` without using an attempt: its run ended for a
        reason that is not the job's (the worker stopping, the embedder starting or stopping)."""
        self._update(job_id, status="queued", stage=stage, progress=0.0, error=note,
                     attempts=TrainingJob.attempts - 1)

    def reap_stale(self, stale_after_s: float) -> builtins.list[str]:
        """Running jobs whose worker went silent go back to ``queued``; returns their ids."""
        cutoff = utcnow() - timedelta(seconds=stale_after_s)
        with self.sessions.begin() as s:
            rows = s.scalars(select(TrainingJob).where(TrainingJob.status == "running",
                                                       TrainingJob.heartbeat_at < cutoff)
                             .with_for_update(skip_locked=True)).all()
            for row in rows:
                row.status = "queued"
                row.error = (f"the worker {row.worker} was lost during {row.stage!r}; "
                             "the job will be retried")
                row.stage = "waiting to retry"
            return [r.id for r in rows]

    def unfinished(self) -> builtins.list[str]:
        with self.sessions() as s:
            return list(s.scalars(select(TrainingJob.id)
                                  .where(TrainingJob.status.in_(("queued", "running")))
                                  .order_by(TrainingJob.created_at)))

    def stats(self) -> tuple[dict[str, int], float]:
        """Jobs per status, and the age in seconds of the oldest queued one (for metrics)."""
        with self.sessions() as s:
            counts = {status: int(n) for status, n in s.execute(
                select(TrainingJob.status, func.count()).group_by(TrainingJob.status))}
            oldest = s.scalar(select(func.min(TrainingJob.created_at))
                              .where(TrainingJob.status == "queued"))
        age = (utcnow() - oldest).total_seconds() if oldest else 0.0
        return counts, age

    def _update(self, job_id: str, **values: Any) -> None:
        with self.sessions.begin() as s:
            s.execute(update(TrainingJob).where(TrainingJob.id == job_id).values(**values))


def to_contract(row: TrainingJob, *, full: bool = True) -> Job:
    report = row.report or None
    metrics = None
    if report and "cv" in report:
        metrics = {k: report["cv"][k] for k in HEADLINE} | {
            "head_type": report.get("head_type"), "train_cv_gap": report.get("train_cv_gap"),
            "threshold": (report.get("threshold") or {}).get("threshold")}
        if "oos_recall" in (report.get("threshold") or {}):
            metrics["oos_recall"] = report["threshold"]["oos_recall"]
    return Job(id=row.id, model_name=row.model_name, status=row.status,
               stage=row.stage, progress=row.progress, source=row.source, options=row.options,
               filename=row.filename, metrics=metrics, report=report if full else None,
               model=ModelRef(name=row.model_name, version=row.model_version)
               if row.model_version else None,
               promoted=row.promoted, error=row.error, attempts=row.attempts,
               created_at=row.created_at, started_at=row.started_at,
               finished_at=row.finished_at)


def attempts(n: int) -> str:
    """``"1 attempt"``, ``"2 attempts"``."""
    return f"{n} attempt" if n == 1 else f"{n} attempts"
