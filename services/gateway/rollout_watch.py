"""The rollout watcher: applies each candidate's policy (:mod:`shared.candidate_policy`) every
``GATEWAY_ROLLOUT_CHECK_S``, promoting or withdrawing it through the registry with the reason
in the alias history. No FastAPI here.

Every gateway replica runs one; on PostgreSQL a pass runs only while it holds a transaction
advisory lock (``pg_try_advisory_xact_lock``: a replica that finds it taken skips the pass),
so several replicas make one decision, not several. On SQLite (one process) there is no lock.
Registry moves check that the candidate is still the one judged, so an operator's change in
between always wins. Each move counts in ``polyhead_rollout_moves_total{model,action}``.

With ``retention_days`` (``GATEWAY_LOG_RETENTION_DAYS``, the inference log's), a pass also
deletes the ``candidate_failures`` minutes older than that, as the log's partitions go.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from prometheus_client import Counter
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from services.gateway import comparison
from shared import candidate_failures
from shared.candidate_policy import Decision, Figures, decide
from shared.contracts.rollout import Candidate
from shared.db.models import Inference
from shared.db.types import utcnow
from shared.registry import Registry

log = logging.getLogger(__name__)
ACTOR = "rollout-watch"
_LOCK_ID = 0x726F6C6C  # "roll"
MOVES = Counter("polyhead_rollout_moves_total", "Candidates the rollout watcher promoted or "
                "withdrew, by model and action.", ["model", "action"])


class RolloutWatch:
    def __init__(self, registry: Registry, window_s: float,
                 retention_days: int | None = None) -> None:
        self.registry, self.window = registry, timedelta(seconds=window_s)
        self.retention = timedelta(days=retention_days) if retention_days else None

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.registry.sessions

    def run_once(self) -> dict[str, Decision]:
        """One pass over the candidates with a policy: ``{model: decision}`` (empty when
        another replica holds the lock), then the retention of ``candidate_failures``."""
        with self.sessions() as locked:
            postgres = locked.get_bind().dialect.name == "postgresql"
            if postgres and not locked.scalar(
                    text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": _LOCK_ID}):
                return {}
            decisions = {}
            for name, (candidate, started) in self.registry.policies().items():
                decision = decide(candidate, self.figures(name, candidate, started))
                decisions[name] = decision
                if decision.action != "wait" and self.registry.settle_candidate(
                        name, candidate.version, decision.action, actor=ACTOR,
                        reason=f"policy: {decision.reason}"):
                    MOVES.labels(name, decision.action).inc()
                    log.info("rollout watch: %s %s v%d (%s)", decision.action, name,
                             candidate.version, decision.reason)
            if self.retention is not None:
                candidate_failures.prune(self.sessions, before=utcnow() - self.retention)
            return decisions

    def figures(self, name: str, candidate: Candidate, started: datetime) -> Figures:
        """Feedback since the candidate started (at most :data:`comparison.MAX_WINDOW` back);
        a canary's requests, failures and p99 over the watch window."""
        now = utcnow()
        since = max(started, now - comparison.MAX_WINDOW)
        end = now + timedelta(seconds=1)  # rows stamped this very moment
        with self.sessions() as s:
            if candidate.mode == "shadow":
                shadow = comparison.rows_of(name, since, end, "shadow", candidate.version)
                mine, theirs = comparison.shadow_feedback(s, shadow)
                return Figures(mine, theirs)
            mine = comparison.feedback(s, comparison.rows_of(name, since, end, "canary",
                                                             candidate.version))
            theirs = comparison.feedback(s, comparison.rows_of(name, since, end, "production"))
            recent = max(started, now - self.window)
            rows = comparison.rows_of(name, recent, end, "canary", candidate.version)
            requests = s.execute(comparison.count(rows)).scalar_one()
            p99 = comparison.percentiles(s, Inference.total_ms, rows,
                                         (0.99,))["p99"]
            failed = candidate_failures.since(s, name, candidate.version, recent)
        return Figures(mine, theirs, requests=requests, failures=failed.get("predict", 0),
                       load_failures=failed.get("load", 0), p99_ms=p99)
