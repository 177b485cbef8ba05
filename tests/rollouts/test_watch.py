"""The rollout watcher on real PostgreSQL and SQLite: automatic promotion once enough feedback
shows the candidate not worse, withdrawal of a canary that fails or is slow, each with its
reason in the alias history and counted in Prometheus; one replica at a time on PostgreSQL;
old ``candidate_failures`` minutes deleted past the inference log's retention."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import Engine, func, select, text

from services.gateway.rollout_watch import RolloutWatch
from shared.candidate_failures import FailureCounts, record
from shared.contracts.rollout import Candidate, Policy
from shared.db.models import AliasEvent, CandidateFailure
from shared.db.types import utcnow
from shared.registry import Registry
from tests.rollouts.rows import give_feedback, registry_with, row, shadow_of, ship


def history(registry: Registry) -> list[tuple[Any, ...]]:
    with registry.sessions() as s:
        return [tuple(e) for e in s.execute(
            select(AliasEvent.alias, AliasEvent.from_version, AliasEvent.to_version,
                   AliasEvent.action, AliasEvent.actor).order_by(AliasEvent.id))]


def reason(registry: Registry) -> str:
    with registry.sessions() as s:
        return s.scalars(select(AliasEvent.reason).order_by(AliasEvent.id.desc())
                         .where(AliasEvent.actor == "rollout-watch")).all()[-1]


def canary(**policy: Any) -> Candidate:
    return Candidate(version=2, mode="canary", share=0.3,
                     policy=Policy(min_requests=20, **policy))


def test_a_shadow_is_promoted_after_enough_feedback(bare_engine: Engine) -> None:
    registry = registry_with(bare_engine, Candidate(
        version=2, mode="shadow", share=1.0, policy=Policy(promote_after=30, margin=0.02)))
    at = utcnow()
    production = [row(i, at, "billing") for i in range(40)]
    ship(bare_engine, production + [shadow_of(p, 100 + i, "refund" if i < 5 else "billing")
                                    for i, p in enumerate(production)])
    # The truth is billing except for six rows: production right on 34, the shadow on 39.
    truth = {p["id"]: "refund" if i < 6 else "billing" for i, p in enumerate(production)}
    watch = RolloutWatch(registry, window_s=300)
    give_feedback(bare_engine, dict(list(truth.items())[:20]))
    waiting = watch.run_once()["intents"]
    assert (waiting.action, waiting.reason) == ("wait", "20 feedback rows of 30")
    assert registry.model("intents").production_version == 1
    give_feedback(bare_engine, dict(list(truth.items())[20:]))
    assert watch.run_once()["intents"].action == "promote"
    model = registry.model("intents")
    assert (model.production_version, model.candidate) == (2, None)
    assert history(registry) == [
        ("production", None, 1, "promote", "system"),
        ("candidate", None, 2, "shadow", "ops"),
        ("production", 1, 2, "auto_promote", "rollout-watch"),
        ("candidate", 2, None, "withdraw", "rollout-watch")]
    with registry.sessions() as s:
        promoted = s.scalar(select(AliasEvent.reason).where(AliasEvent.action == "auto_promote"))
    assert promoted is not None and promoted.startswith(
        "policy: not worse: accuracy 97.50% (40 rows) vs production 85.00% (40 rows)")
    assert watch.run_once() == {}  # nothing left to watch


def moves(action: str) -> float:
    return REGISTRY.get_sample_value("polyhead_rollout_moves_total",
                                     {"model": "intents", "action": action}) or 0.0


def test_a_failing_canary_is_withdrawn(bare_engine: Engine) -> None:
    registry = registry_with(bare_engine, canary(max_error_rate=0.05))
    withdrawn = moves("withdraw")
    ship(bare_engine, [row(i, utcnow(), "billing", role="canary", version=2)
                       for i in range(30)])
    watch = RolloutWatch(registry, window_s=300)
    assert watch.run_once()["intents"].action == "wait"
    failures = FailureCounts()  # as classifiers count them, written at their registry polls
    failures.add("intents", 2, "predict", 2)
    failures.add("intents", 1, "predict", 50)  # another version's: not this candidate's
    record(registry.sessions, failures)
    failures.add("intents", 2, "predict", 3)
    record(registry.sessions, failures)
    with registry.sessions() as s:  # one row a minute, added up
        rows = s.execute(select(CandidateFailure.model_version, CandidateFailure.failures)
                         .order_by(CandidateFailure.model_version)).all()
    assert [tuple(r) for r in rows] in ([(1, 50), (2, 5)],  # the same minute, or two:
                                        [(1, 50), (2, 2), (2, 3)])
    assert watch.run_once()["intents"].action == "withdraw"
    assert moves("withdraw") == withdrawn + 1
    model = registry.model("intents")
    assert (model.production_version, model.candidate) == (1, None)
    assert history(registry)[-1] == ("candidate", 2, None, "withdraw", "rollout-watch")
    assert reason(registry) == "policy: error rate 14.29% over 35 requests > max 5.00%"


def test_a_slow_canary_is_withdrawn(bare_engine: Engine) -> None:
    registry = registry_with(bare_engine, canary(max_p99_ms=100))
    at = utcnow()
    ship(bare_engine, [row(i, at, "billing", role="canary", version=2,
                           total_ms=900.0 if i < 3 else 50.0) for i in range(30)])
    assert RolloutWatch(registry, window_s=300).run_once()["intents"].action == "withdraw"
    assert reason(registry).startswith("policy: p99 latency 900 ms over 30 requests")


def test_an_operators_change_wins(bare_engine: Engine) -> None:
    registry = registry_with(bare_engine, canary(max_p99_ms=100))
    assert not registry.settle_candidate("intents", 3, "withdraw", actor="rollout-watch",
                                         reason="stale")
    assert registry.model("intents").candidate is not None


def test_one_replica_watches_at_a_time(pg_engine: Engine) -> None:
    registry = registry_with(pg_engine, canary(max_p99_ms=100))
    ship(pg_engine, [row(i, utcnow(), "billing", role="canary", version=2, total_ms=900.0)
                     for i in range(30)])
    with pg_engine.begin() as other_replica:
        other_replica.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": 0x726F6C6C})
        assert RolloutWatch(registry, window_s=300).run_once() == {}
    assert RolloutWatch(registry, window_s=300).run_once()["intents"].action == "withdraw"


def test_failure_minutes_past_the_log_retention_are_deleted(bare_engine: Engine) -> None:
    registry = registry_with(bare_engine, canary(max_error_rate=0.05))
    minute = utcnow().replace(second=0, microsecond=0)
    with registry.sessions.begin() as s:
        s.add_all(CandidateFailure(model_name="intents", model_version=2, kind="predict",
                                   minute=minute - timedelta(days=days), failures=1)
                  for days in (0, 6, 8, 30))
    RolloutWatch(registry, window_s=300).run_once()
    with registry.sessions() as s:  # no retention: all kept
        assert s.scalar(select(func.count()).select_from(CandidateFailure)) == 4
    RolloutWatch(registry, window_s=300, retention_days=7).run_once()
    with registry.sessions() as s:
        kept = s.scalars(select(CandidateFailure.minute).order_by(CandidateFailure.minute))
        assert [minute - m for m in kept] == [timedelta(days=6), timedelta(0)]
