"""Candidate failures: counted where they happen (a classifier), kept in
``candidate_failures`` for the rollout watcher. A canary request that fails is answered by
production, so it leaves no canary inference row: this table is the only trace of it.

A classifier counts in memory (:class:`FailureCounts`: ``predict`` per text, ``load`` per
failed attempt to load the head) and writes the counts at each registry poll
(:func:`record`) into one row per minute, so a failing canary costs one small upsert per poll,
not one write per request, and the table grows by at most a row a minute per failing
candidate, until :func:`prune` deletes the old minutes.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from shared.db.models import CandidateFailure
from shared.db.types import utcnow

Key = tuple[str, int, str]  # model, version, kind (predict | load)


class FailureCounts:
    """Failures since the last :meth:`take`, thread-safe (requests count from worker threads)."""

    def __init__(self) -> None:
        self._counts: Counter[Key] = Counter()
        self._lock = threading.Lock()

    def add(self, model: str, version: int, kind: str, failures: int = 1) -> None:
        with self._lock:
            self._counts[(model, version, kind)] += failures

    def take(self) -> Counter[Key]:
        with self._lock:
            counts, self._counts = self._counts, Counter()
            return counts


def record(sessions: sessionmaker[Session], counts: FailureCounts) -> None:
    """Add what was counted since the last call to this minute's rows (put back if the write
    fails): one row per candidate, kind and minute, however many classifiers write."""
    taken = counts.take()
    if not taken:
        return
    minute = utcnow().replace(second=0, microsecond=0)
    try:
        with sessions.begin() as s:
            insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
            statement = insert(CandidateFailure).values([
                {"model_name": model, "model_version": version, "kind": kind,
                 "minute": minute, "failures": n}
                for (model, version, kind), n in sorted(taken.items())])
            s.execute(statement.on_conflict_do_update(
                index_elements=["model_name", "minute", "model_version", "kind"],
                set_={"failures": CandidateFailure.failures + statement.excluded.failures}))
    except Exception:
        for (model, version, kind), n in taken.items():
            counts.add(model, version, kind, n)
        raise


def since(s: Session, model: str, version: int, start: datetime) -> dict[str, int]:
    """``{kind: failures}`` of one candidate version in the minutes since ``start`` (rounded
    down to the minute)."""
    rows = s.execute(select(CandidateFailure.kind, func.sum(CandidateFailure.failures))
                     .where(CandidateFailure.model_name == model,
                            CandidateFailure.minute >= start.replace(second=0,
                                                                     microsecond=0),
                            CandidateFailure.model_version == version)
                     .group_by(CandidateFailure.kind)).all()
    return {kind: int(n) for kind, n in rows}


def prune(sessions: sessionmaker[Session], *, before: datetime) -> None:
    """Delete the minutes before ``before``, of every model and version."""
    with sessions.begin() as s:
        s.execute(delete(CandidateFailure).where(CandidateFailure.minute < before))
