"""The candidate alias in the registry, on real PostgreSQL and SQLite: set, change, withdraw,
promote; every refusal leaves the configuration as it was; every move is in ``alias_events``."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine, select

from shared.contracts.rollout import Candidate
from shared.db import session_factory
from shared.db.models import AliasEvent
from shared.errors import Conflict, NotFound
from shared.registry import Registry, Serving


@pytest.fixture
def registry(migrated_engine: Engine) -> Registry:
    registry = Registry(session_factory(migrated_engine))
    for embedder in ("m", "m", "m", "other"):  # v1..v3 on m, v4 on another embedder
        registry.register("intents", write=lambda v: f"file:///store/intents/{v}",
                          head_type="logreg", embedder_model=embedder, embedder_dim=384,
                          num_classes=3, train_rows=30, weighted_f1=0.9, metrics={},
                          params={}, data_fingerprint="0" * 64, job_id=None)
    registry.promote("intents", 1)
    return registry


def history(registry: Registry) -> list[tuple[str, int | None, int | None, str, str]]:
    with registry.sessions() as s:
        return [(e.alias, e.from_version, e.to_version, e.action, e.reason)
                for e in s.scalars(select(AliasEvent).order_by(AliasEvent.id))]


def test_set_change_withdraw_and_promote_leave_the_history(registry: Registry) -> None:
    shadow = Candidate(version=2, mode="shadow", share=1.0)
    move = registry.set_candidate("intents", shadow, actor="ops", reason="new data")
    assert (move.action, move.previous, move.candidate) == ("shadow", None, shadow)
    assert registry.model("intents").candidate == shadow
    assert registry.serving() == {"intents": Serving(1, shadow)}
    assert registry.set_candidate("intents", shadow).action == "unchanged"

    canary = Candidate(version=2, mode="canary", share=0.1)  # the same version: a change
    assert registry.set_candidate("intents", canary).previous == shadow
    assert registry.clear_candidate("intents", reason="enough").candidate is None
    assert registry.clear_candidate("intents").action == "unchanged"
    assert registry.model("intents").candidate is None

    registry.set_candidate("intents", Candidate(version=3, mode="canary", share=0.5))
    registry.promote("intents", 3, reason="canary looked fine")  # withdraws the candidate
    assert registry.model("intents").candidate is None
    assert registry.serving() == {"intents": Serving(3, None)}
    assert registry.rollback("intents").to_version == 1  # candidate moves are not on the stack
    assert history(registry) == [
        ("production", None, 1, "promote", ""),
        ("candidate", None, 2, "shadow", "share 1; new data"),
        ("candidate", 2, 2, "canary", "share 0.1"),
        ("candidate", 2, None, "withdraw", "enough"),
        ("candidate", None, 3, "canary", "share 0.5"),
        ("production", 1, 3, "promote", "canary looked fine"),
        ("candidate", 3, None, "withdraw", "promote to production"),
        ("production", 3, 1, "rollback", ""),
    ]


@pytest.mark.parametrize(("model", "version", "error", "words"), [
    ("nope", 2, NotFound, "unknown model 'nope'"),
    ("intents", 9, NotFound, "versions: [1, 2, 3, 4]"),
    ("intents", 1, Conflict, "already production"),
    ("intents", 4, Conflict, "trained on other (384-d) but production v1 on m"),
    ("intents", 3, Conflict, "already has a candidate: v2 (shadow, share 0.2)"),
])
def test_refusals_leave_the_running_candidate(registry: Registry, model: str, version: int,
                                              error: type[Exception], words: str) -> None:
    running = Candidate(version=2, mode="shadow", share=0.2)
    registry.set_candidate("intents", running)
    before = history(registry)
    with pytest.raises(error, match=re.escape(words)):
        registry.set_candidate(model, Candidate(version=version, mode="canary", share=0.5))
    assert registry.model("intents").candidate == running and history(registry) == before


def test_no_candidate_without_production(registry: Registry) -> None:
    registry.register("spam", write=lambda v: f"file:///store/spam/{v}", head_type="logreg",
                      embedder_model="m", embedder_dim=384, num_classes=2, train_rows=10,
                      weighted_f1=0.9, metrics={}, params={}, data_fingerprint="0" * 64,
                      job_id=None)
    with pytest.raises(Conflict, match="no production version"):
        registry.set_candidate("spam", Candidate(version=1, mode="shadow", share=1.0))
    with pytest.raises(NotFound):
        registry.clear_candidate("nope")
