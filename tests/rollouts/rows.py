"""Constructed inference rows for rollout tests: production rows, their shadows or canary rows,
shipped through the real sink, and feedback through the real feedback path."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from services.gateway.feedback import store_feedback
from services.gateway.inference_log import SqlSink
from services.gateway.inference_log.records import encode
from shared.contracts.rollout import Candidate
from shared.db import session_factory
from shared.db.migrate import upgrade
from shared.registry import Registry

LABELS = ["billing", "refund", "greeting"]


def registry_with(engine: Engine, candidate: Candidate | None) -> Registry:
    """``intents`` v1 in production and v2 beside it as ``candidate`` (artifacts unused)."""
    upgrade(engine)
    registry = Registry(session_factory(engine))
    for _ in range(2):
        registry.register("intents", write=lambda v: f"file:///none/{v}", head_type="logreg",
                          embedder_model="m", embedder_dim=4, num_classes=3, train_rows=9,
                          weighted_f1=0.9, params={}, data_fingerprint="", job_id=None,
                          metrics={"class_counts": dict.fromkeys(LABELS, 3)})
    registry.promote("intents", 1)
    if candidate is not None:
        registry.set_candidate("intents", candidate, actor="ops")
    return registry


def row(i: int, at: datetime, label: str | None, *, role: str = "production",
        version: int = 1, total_ms: float | None = 10.0, head_ms: float = 1.0,
        probability: float = 0.8, shadow_of: str | None = None) -> dict[str, Any]:
    return {"id": f"{i:032x}", "created_at": at + timedelta(microseconds=i),
            "request_id": None, "client": "app", "model_name": "intents",
            "model_version": version, "head_type": "logreg", "embedder_model": "m",
            "input_text": f"t{i}", "label": label, "probability": probability, "top_k": {},
            "abstained": label is None, "cache_hit": False, "embed_ms": 2.0,
            "head_ms": head_ms, "total_ms": total_ms, "feedback_label": None,
            "feedback_at": None, "role": role, "shadow_of": shadow_of}


def shadow_of(production: dict[str, Any], i: int, label: str | None,
              head_ms: float = 2.0) -> dict[str, Any]:
    """A shadow row of ``production`` (v2, its own label), as the gateway logs one."""
    return production | {"id": f"{i:032x}", "role": "shadow", "shadow_of": production["id"],
                         "model_version": 2, "label": label, "abstained": label is None,
                         "head_ms": head_ms, "total_ms": None}


def ship(engine: Engine, rows: list[dict[str, Any]]) -> None:
    assert SqlSink(engine).write([encode(r) for r in rows]) == len(rows)


def give_feedback(engine: Engine, truth: dict[str, str]) -> None:
    """``{inference id: true label}``, through the feedback path callers use."""
    sessions = session_factory(engine)
    for inference_id, label in truth.items():
        assert store_feedback(sessions, inference_id, label) is not None
