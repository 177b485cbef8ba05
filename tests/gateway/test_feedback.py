"""Feedback keeps the rollups' feedback counts equal to the rows', on PostgreSQL and SQLite:
first feedback, replaced feedback (right to wrong and back), feedback on an abstention, and
feedbacks racing on one row; the report's accuracy follows. A shadow row's id is refused
like an unknown one. Labels the model does not know are
refused unless marked new, and every feedback is kept in its history."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, case, func, select

from services.gateway.feedback import store_feedback
from services.gateway.routes import feedback as feedback_routes
from shared.db import session_factory
from shared.db.models import FeedbackEvent, Inference, InferenceRollup
from shared.db.types import utcnow
from tests.gateway.helpers import gateway_client, record, ship

pytestmark = pytest.mark.anyio


def counts(engine: Engine) -> tuple[tuple[int, int], tuple[int, int]]:
    """(feedback rows, correct ones) by the rollups, then by the raw rows."""
    with engine.connect() as c:
        rolled = c.execute(select(func.sum(InferenceRollup.feedback),
                                  func.sum(InferenceRollup.feedback_correct))).one()
        raw = c.execute(select(
            func.count(Inference.feedback_label),
            func.sum(case((Inference.feedback_label == Inference.label, 1), else_=0)))).one()
    return (int(rolled[0]), int(rolled[1])), (int(raw[0]), int(raw[1] or 0))


async def test_report_accuracy_follows_feedback(published_db: Engine, any_db_url: str,
                                                tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feedback_routes, "FEEDBACK_WAIT_S", 0.2)
    now = utcnow()
    right, other, abstained = (record(now - timedelta(hours=5), label="a"),
                               record(now, label="b"),
                               record(now, label=None, abstained=True))
    ship(published_db, [right, other, abstained])
    shadow = record(now, label="a", model_version=2, role="shadow", shadow_of=other["id"])
    ship(published_db, [shadow])
    steps = [(right, "a", 1, 1.0),    # first feedback, right
             (right, "b", 1, 0.0),    # replaced: now wrong, still one row
             (other, "b", 2, 0.5),    # another row, right
             (right, "a", 2, 1.0),    # replaced back: right again
             (right, "a", 2, 1.0),    # the same again: nothing moves
             (abstained, "a", 3, 0.6667)]  # an abstention is never right
    async with gateway_client(any_db_url, tmp_path / "inference-log") as client:
        for row, label, rows, accuracy in steps:
            answer = await client.post(f"/v1/inferences/{row['id']}/feedback",
                                       json={"label": label})
            assert answer.json() == {"inference_id": row["id"], "label": label,
                                     "predicted": row["label"]}
            report = (await client.get("/v1/reports/models/intents")).json()
            assert report["feedback"] == {"rows": rows, "accuracy": accuracy}, (row, label)
            rolled, raw = counts(published_db)
            assert rolled == raw
        for never_given in ("0" * 32, shadow["id"]):
            refused = await client.post(f"/v1/inferences/{never_given}/feedback",
                                        json={"label": "a"})
            assert refused.status_code == 404, never_given
    with published_db.connect() as c:
        assert c.scalar(select(Inference.feedback_at).where(Inference.id == shadow["id"])) is None
    assert counts(published_db)[0] == (3, 2)


def test_racing_feedbacks_count_once(published_db: Engine) -> None:
    row = record(utcnow(), label="a")
    ship(published_db, [row])
    sessions = session_factory(published_db)
    labels = ["a", "b"] * 20
    with ThreadPoolExecutor(8) as pool:
        stored = list(pool.map(lambda label: store_feedback(sessions, row["id"], label), labels))
    assert all(s is not None and s.predicted == "a" for s in stored)
    rolled, raw = counts(published_db)
    assert rolled == raw and raw[0] == 1


async def test_unknown_labels_are_refused_and_every_feedback_is_kept(
        published_db: Engine, any_db_url: str, tmp_path: Path) -> None:
    row = record(utcnow(), label="a")
    ship(published_db, [row])
    path = f"/v1/inferences/{row['id']}/feedback"
    async with gateway_client(any_db_url, tmp_path / "inference-log") as client:
        refused = await client.post(path, json={"label": "no_such_label_xyz"})
        assert refused.status_code == 422
        assert refused.json()["error"]["message"] == (
            "unknown label 'no_such_label_xyz': version 1 of model 'intents' knows a, b, c; "
            "to teach it a new label, send \"new_label\": true")
        assert counts(published_db) == ((0, 0), (0, 0))  # nothing written

        for label in ("b", "a"):
            assert (await client.post(path, json={"label": label})).status_code == 200
        added = await client.post(path, json={"label": "brand_new", "new_label": True})
        assert added.status_code == 200 and added.json()["label"] == "brand_new"

    with published_db.connect() as c:
        history = c.execute(select(FeedbackEvent.label, FeedbackEvent.predicted,
                                   FeedbackEvent.client, FeedbackEvent.model_version)
                            .where(FeedbackEvent.inference_id == row["id"])
                            .order_by(FeedbackEvent.id)).all()
        latest = c.scalar(select(Inference.feedback_label).where(Inference.id == row["id"]))
    assert [tuple(h) for h in history] == [("b", "a", "anonymous", 1), ("a", "a", "anonymous", 1),
                                           ("brand_new", "a", "anonymous", 1)]
    assert latest == "brand_new"
    rolled, raw = counts(published_db)
    assert rolled == raw == (1, 0)
