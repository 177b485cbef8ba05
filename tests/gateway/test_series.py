"""Series read the hourly rollups and split them per bucket and version, and each bucket tells
the rows' truth: on PostgreSQL and SQLite, rows shipped as the log shipper ships them, figures
compared with the same figures computed from the rows of each bucket."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, event, select

from services.gateway.drift import label_drift
from services.gateway.series import model_series
from shared.db import session_factory
from shared.db.models import Inference
from shared.db.rollups import LATENCY_BUCKETS_MS, bucket_of, hour_of
from shared.db.types import utcnow
from shared.registry import Registry
from tests.classifier.helpers import publish
from tests.conftest import free_port
from tests.gateway.helpers import LABELS, gateway_client, record, ship
from tests.gateway.test_reports import traffic

pytestmark = pytest.mark.anyio
SERIES = "/v1/reports/models/intents/series"


def in_bucket(rows: list[dict[str, Any]], start: datetime, step: timedelta, i: int,
              version: int) -> list[dict[str, Any]]:
    low = start + i * step
    return [r for r in rows if r["model_version"] == version
            and low <= r["created_at"] < low + step]


async def test_each_bucket_and_version_equal_its_rows(published_db: Engine, any_db_url: str,
                                                      tmp_path: Path) -> None:
    # v2: trained on other label counts than v1, so each version's drift has its own baseline.
    v2 = publish(any_db_url, tmp_path / "artifacts", "intents",
                 [(f"text {i}", LABELS[0] if i < 20 else LABELS[1 + i % 2]) for i in range(30)],
                 None, promote=False)
    base = hour_of(utcnow()) - timedelta(hours=5)
    rows = traffic(base, 4, 600)
    ship(published_db, rows + [record(base - timedelta(microseconds=1)),  # outside, other model
                               record(base + timedelta(hours=1), model_name="other")])
    async with gateway_client(any_db_url, tmp_path / "inference-log") as client:
        for i, row in enumerate(rows[:60]):  # feedback: right and wrong answers
            answer = (row["label"] or "a") if i % 3 else "b"
            sent = await client.post(f"/v1/inferences/{row['id']}/feedback",
                                     json={"label": answer})
            assert sent.status_code == 200, sent.text
        response = await client.get(SERIES, params={
            "from": (base + timedelta(minutes=30)).isoformat(),
            "to": (base + timedelta(hours=3, minutes=1)).isoformat()})
        report = (await client.get("/v1/reports/models/intents", params={
            "from": base.isoformat(), "to": (base + timedelta(hours=4)).isoformat()})).json()
    assert response.status_code == 200, response.text
    series = response.json()
    hour = timedelta(hours=1)
    assert series["step"] == "hour" and series["drift_alarm"] == 0.2
    assert series["buckets"] == [(base + i * hour).isoformat() for i in range(4)]
    assert set(series["versions"]) == {"1", str(v2)}
    with published_db.connect() as c:
        truth = dict(c.execute(select(Inference.id, Inference.feedback_label)).all())
    trained = {1: dict(Counter(LABELS[i % 3] for i in range(30))),
               v2: {LABELS[0]: 20, LABELS[1]: 5, LABELS[2]: 5}}
    for version, figures in series["versions"].items():
        for i in range(4):
            mine = in_bucket(rows, base, hour, i, int(version))
            assert figures["volume"][i] == len(mine)
            assert figures["abstain_rate"][i] == pytest.approx(
                np.mean([r["abstained"] for r in mine]), abs=1e-4)
            assert figures["cache_hit_rate"][i] == pytest.approx(
                np.mean([bool(r["cache_hit"]) for r in mine]), abs=1e-4)
            assert figures["mean_confidence"][i] == pytest.approx(
                np.mean([r["probability"] for r in mine]), abs=1e-4)
            timed = [r for r in mine if r["total_ms"] is not None]
            assert figures["mean_head_ms"][i] == pytest.approx(
                np.mean([r["head_ms"] for r in timed]), abs=1e-3)
            exact = [r["total_ms"] for r in timed]
            for q in (0.5, 0.95, 0.99):
                upper = bucket_of(float(np.percentile(exact, q * 100, method="inverted_cdf")))
                lower = max((b for b in LATENCY_BUCKETS_MS if b < upper), default=0.0)
                assert lower - 1e-4 <= figures["latency_ms"][f"p{round(q * 100)}"][i] \
                    <= upper + 1e-4
            given = [(r["label"], truth[r["id"]]) for r in mine if truth[r["id"]]]
            assert figures["feedback"]["rows"][i] == len(given)
            assert figures["feedback"]["accuracy"][i] == (pytest.approx(
                np.mean([label == t for label, t in given]), abs=1e-4) if given else None)
            served = Counter(r["label"] or "(abstained)" for r in mine)
            drift = label_drift(trained[int(version)], served)
            assert drift is not None
            assert figures["drift_psi"][i] == pytest.approx(drift.psi, abs=1e-4)
    # all versions: the versions added up; over the whole window, the report's own figures.
    everything = series["all"]
    assert everything["volume"] == [sum(f["volume"][i] for f in series["versions"].values())
                                    for i in range(4)]
    assert sum(everything["volume"]) == report["volume"]
    assert sum(everything["feedback"]["rows"]) == report["feedback"]["rows"] == 60
    assert everything["drift_against_version"] == 1
    first_hour = label_drift(trained[1], Counter(r["label"] or "(abstained)" for r in rows
                                                 if base <= r["created_at"] < base + hour))
    assert first_hour is not None
    assert everything["drift_psi"][0] == pytest.approx(first_hour.psi, abs=1e-4)


async def test_days_one_version_and_the_automatic_step(published_db: Engine, any_db_url: str,
                                                       tmp_path: Path) -> None:
    midnight = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    start = midnight - timedelta(days=3)
    rows = traffic(start, 48, 300)  # two whole days
    ship(published_db, rows)
    async with gateway_client(any_db_url, tmp_path / "inference-log") as client:
        days = (await client.get(SERIES, params={
            "from": (start + timedelta(hours=5)).isoformat(),
            "to": (start + timedelta(days=2, hours=1)).isoformat(),
            "step": "day", "version": 1})).json()
        week = (await client.get(SERIES, params={
            "from": (midnight - timedelta(days=7)).isoformat(),
            "to": midnight.isoformat()})).json()
        month = (await client.get(SERIES, params={
            "from": (midnight - timedelta(days=30)).isoformat(),
            "to": midnight.isoformat()})).json()
    day = timedelta(days=1)
    assert days["buckets"] == [(start + i * day).isoformat() for i in range(3)]
    assert (days["from"], days["to"]) == (start.isoformat(), (start + 3 * day).isoformat())
    assert list(days["versions"]) == ["1"]
    assert days["versions"]["1"]["volume"] == [len(in_bucket(rows, start, day, i, 1))
                                               for i in range(3)]
    assert days["all"]["volume"] == days["versions"]["1"]["volume"]
    assert days["versions"]["1"]["abstain_rate"][2] is None  # no traffic: no rate
    assert week["step"] == "hour" and len(week["buckets"]) == 7 * 24
    assert sum(week["all"]["volume"]) == len(rows)
    assert month["step"] == "day" and len(month["buckets"]) == 30
    assert sum(month["all"]["volume"]) == len(rows)


async def test_an_empty_window(published_db: Engine, any_db_url: str, tmp_path: Path) -> None:
    async with gateway_client(any_db_url, tmp_path / "inference-log") as client:
        empty = (await client.get(SERIES, params={"from": "2020-01-01T00:00:00Z",
                                                  "to": "2020-01-01T02:00:00Z"})).json()
    assert empty["buckets"] == ["2020-01-01T00:00:00+00:00", "2020-01-01T01:00:00+00:00"]
    assert empty["versions"] == {}
    assert empty["all"]["volume"] == [0, 0]
    assert empty["all"]["latency_ms"]["p99"] == [None, None]
    assert empty["all"]["feedback"] == {"rows": [0, 0], "accuracy": [None, None]}
    assert empty["all"]["drift_psi"] == [None, None]


def test_series_read_rollups_in_three_queries(published_db: Engine) -> None:
    ship(published_db, traffic(hour_of(utcnow()) - timedelta(hours=48), 48, 200))
    statements: list[str] = []
    event.listen(published_db, "before_cursor_execute",
                 lambda *args: statements.append(args[2]))  # (conn, cursor, statement, ...)
    sessions = session_factory(published_db)
    series = model_series(sessions, Registry(sessions), "intents",
                          utcnow() - timedelta(hours=49), utcnow())
    assert len(series["buckets"]) == 50 and sum(series["all"]["volume"]) == 200
    assert not [s for s in statements if re.search(r"\b(FROM|JOIN)\s+inferences\b", s, re.I)]
    assert len([s for s in statements if "inference_rollup" in s]) == 3


async def test_errors(published_db: Engine, any_db_url: str, tmp_path: Path) -> None:
    async with gateway_client(any_db_url, tmp_path / "inference-log") as client:
        async def status(path: str, **params: Any) -> tuple[int, str]:
            response = await client.get(path, params=params)
            return response.status_code, response.json()["error"]["message"]

        assert (await status("/v1/reports/models/nope/series"))[0] == 404
        code, said = await status(SERIES, version=7)
        assert code == 404 and "no version 7" in said
        assert (await status(SERIES, step="week"))[0] == 422
        assert (await status(SERIES, version=0))[0] == 422
        code, said = await status(SERIES, step="hour", **{"from": "2026-01-01T00:00:00Z",
                                                         "to": "2026-02-01T00:00:00Z"})
        assert code == 422 and "at most 400 buckets" in said and "step=day" in said
        assert (await status(SERIES, **{"from": "1990-01-01T00:00:00Z",
                                        "to": "2026-01-01T00:00:00Z"}))[0] == 422
        assert (await status(SERIES, **{"from": "2026-01-02T00:00:00Z",
                                        "to": "2026-01-01T00:00:00Z"}))[0] == 422
        code, said = await status(SERIES, step="day", to="9999-12-31T12:00:00Z")
        assert code == 422 and "step=day" in said


async def test_a_database_down_answers_503(tmp_path: Path) -> None:
    down = f"postgresql://root@127.0.0.1:{free_port()}/test"
    async with gateway_client(down, tmp_path / "inference-log") as client:
        response = await client.get(SERIES)
    assert response.status_code == 503
    assert response.json()["error"]["message"] == (
        "the database is unavailable; retry shortly")
