"""The registry on a real PostgreSQL (and the embedded SQLite): versions, promote, rollback."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from shared.db import session_factory
from shared.errors import Conflict, NotFound
from shared.registry import PromotePolicy, Registry, Serving, should_promote


@pytest.fixture
def registry(migrated_engine: Engine) -> Registry:
    return Registry(session_factory(migrated_engine))


def _register(registry: Registry, name: str, f1: float) -> int:
    written: list[int] = []

    def write(version: int) -> str:
        written.append(version)
        return f"file:///store/{name}/{version}"

    version = registry.register(name, write=write, head_type="logreg", embedder_model="m",
                                embedder_dim=384, num_classes=3, train_rows=30, weighted_f1=f1,
                                metrics={"cv": {"weighted_f1": f1}}, params={},
                                data_fingerprint="0" * 64, job_id=None)
    assert written == [version.version] and version.status == "new"
    return version.version


def test_versions_are_numbered_per_model(registry: Registry) -> None:
    assert [_register(registry, "intents", 0.9) for _ in range(3)] == [1, 2, 3]
    assert _register(registry, "spam", 0.8) == 1
    assert [m.name for m in registry.list_models()] == ["intents", "spam"]
    assert registry.model("intents").production_version is None


def test_promote_and_rollback_walk_the_history(registry: Registry) -> None:
    for _ in range(3):
        _register(registry, "intents", 0.9)
    for v in (1, 2, 3):
        registry.promote("intents", v)
    assert registry.serving() == {"intents": Serving(3, None)}
    assert registry.rollback("intents").to_version == 2
    assert registry.rollback("intents").to_version == 1  # twice: further back, not a toggle
    with pytest.raises(Conflict, match="no earlier production version"):
        registry.rollback("intents")
    statuses = {v.version: v.status for v in registry.model("intents").versions}
    assert statuses == {1: "production", 2: "archived", 3: "archived"}
    registry.promote("intents", 3)
    assert registry.rollback("intents").to_version == 1


def test_promoting_the_current_version_changes_nothing(registry: Registry) -> None:
    _register(registry, "intents", 0.9)
    registry.promote("intents", 1)
    assert registry.promote("intents", 1).action == "unchanged"


def test_unknown_models_and_versions(registry: Registry) -> None:
    _register(registry, "intents", 0.9)
    with pytest.raises(NotFound, match="unknown model 'nope'; known models: intents"):
        registry.model("nope")
    with pytest.raises(NotFound, match="no version 7"):
        registry.promote("intents", 7)
    with pytest.raises(NotFound, match="no production version"):
        registry.version("intents", "production")


def test_a_failed_artifact_write_registers_nothing(registry: Registry) -> None:
    def write(version: int) -> str:
        raise OSError("disk full")

    with pytest.raises(OSError):
        registry.register("intents", write=write, head_type="logreg", embedder_model="m",
                          embedder_dim=3, num_classes=2, train_rows=2, weighted_f1=1.0,
                          metrics={}, params={}, data_fingerprint="", job_id=None)
    assert _register(registry, "intents", 0.9) == 1


@pytest.mark.parametrize(("policy", "new", "current", "expected"), [
    ("if_not_worse", 0.90, None, True), ("if_not_worse", 0.90, 0.90, True),
    ("if_not_worse", 0.89, 0.90, False), ("always", 0.1, 0.9, True), ("never", 1.0, None, False),
])
def test_promotion_policy(policy: PromotePolicy, new: float, current: float | None,
                          expected: bool) -> None:
    assert should_promote(policy, new, current) is expected
