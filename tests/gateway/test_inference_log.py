"""The inference log never fails a request and never loses a record: real PostgreSQL, stopped
and started under traffic; a crashed process's spool replayed; duplicates stored once."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from services.gateway.inference_log import InferenceLog
from shared.db import make_engine
from shared.db.migrate import upgrade
from shared.db.models import Inference
from shared.db.types import utcnow
from tests.conftest import PostgresOutage


def record(i: int) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "created_at": utcnow(), "request_id": f"req-{i}",
            "client": "test", "model_name": "intents", "model_version": 1, "head_type": "logreg",
            "embedder_model": "m", "input_text": f"text {i}", "label": "a", "probability": 0.9,
            "top_k": {"top": [["a", 0.9]]}, "abstained": False, "cache_hit": True,
            "embed_ms": 1.0, "head_ms": 0.1, "total_ms": 1.5}


def count(engine: Any) -> int:
    with engine.connect() as c:
        return int(c.scalar(select(func.count()).select_from(Inference)))


def wait_for(predicate: Any, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def engine(pg_url: str) -> Any:
    engine = make_engine(pg_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def test_batches_reach_the_database(engine: Any, tmp_path: Path) -> None:
    sink = InferenceLog(engine, tmp_path / "spool", batch_size=50)
    sink.start()
    for i in range(0, 300, 30):
        sink.submit([record(j) for j in range(i, i + 30)])
    sink.stop()
    assert count(engine) == 300 and sink.stats["written"] == 300
    assert not list((tmp_path / "spool").glob("*.jsonl"))


def test_postgres_outage_loses_nothing(engine: Any, tmp_path: Path,
                                       postgres_outage: PostgresOutage) -> None:
    sink = InferenceLog(engine, tmp_path / "spool", buffer_size=50, retry_interval_s=0.3)
    sink.start()
    sink.submit([record(i) for i in range(100)])  # a burst: half overflows to the spool
    wait_for(lambda: count(engine) == 100)

    postgres_outage.stop()
    before = sink.stats["spooled"] + sink.stats["overflow"]
    started = time.perf_counter()
    for i in range(100, 400, 10):
        sink.submit([record(j) for j in range(i, i + 10)])
    assert time.perf_counter() - started < 5  # submit never waits for the database
    wait_for(lambda: sink.stats["spooled"] + sink.stats["overflow"] - before == 300)
    assert not sink.db_ok and sink.spool.pending()

    postgres_outage.start()
    wait_for(lambda: count(engine) == 400 and not sink.spool.pending(), timeout_s=60)
    sink.stop()
    assert count(engine) == 400 and sink.db_ok


def test_a_crashed_processs_spool_is_replayed_once(engine: Any, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    records = [record(i) for i in range(20)]
    # Half of them reached the database before the crash; the spool has all 20 and a torn line.
    first = InferenceLog(engine, tmp_path / "other")
    first.start()
    first.submit(records[:10])
    first.stop()
    dead_pid = 2 ** 22 + 12345  # no such process
    lines = "".join(json.dumps(r, default=str) + "\n" for r in records) + '{"id": "tor'
    (spool / f"spool-{dead_pid}-1-1.jsonl").write_text(lines)

    sink = InferenceLog(engine, spool, retry_interval_s=0.1)
    sink.start()
    wait_for(lambda: not sink.spool.pending())
    sink.stop()
    assert count(engine) == 20 and sink.stats["replayed"] == 20


def test_stop_flushes_to_the_spool_when_the_database_is_down(tmp_path: Path) -> None:
    dead = make_engine("postgresql://root@127.0.0.1:1/none")
    sink = InferenceLog(dead, tmp_path / "spool", flush_interval_s=5)
    sink.start()
    sink.submit([record(i) for i in range(25)])
    sink.stop()
    lines = [json.loads(line) for f in sorted((tmp_path / "spool").glob("*.jsonl"))
             for line in f.read_text().splitlines()]
    assert len(lines) == 25 and os.path.exists(tmp_path / "spool")
    dead.dispose()
