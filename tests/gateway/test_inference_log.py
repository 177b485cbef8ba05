"""The inference log against the real PostgreSQL: records appended locally reach the table
with their rollups; an outage, a dead process's folder, a poison record, a full or unwritable
disk lose nothing silently (appended + direct = shipped + quarantined + dropped)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text

from services.gateway.inference_log import InferenceLog, SinkRejected, SqlSink
from services.gateway.inference_log.folders import LogFolder
from services.gateway.inference_log.records import encode
from services.gateway.inference_log.wal import SegmentWriter
from shared.db import make_engine
from shared.db.models import Inference, InferenceRollup
from shared.db.types import utcnow
from shared.errors import Unavailable
from tests.conftest import PostgresOutage, small_disk


def record(i: int, **fields: Any) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "created_at": utcnow(), "request_id": f"req-{i}",
            "client": "test", "model_name": "intents", "model_version": 1, "head_type": "logreg",
            "embedder_model": "m", "input_text": f"text {i}", "label": "a", "probability": 0.9,
            "top_k": {"top": [["a", 0.9]]}, "abstained": False, "cache_hit": True,
            "embed_ms": 1.0, "head_ms": 0.1, "total_ms": 1.5} | fields


def count(engine: Engine) -> int:
    with engine.connect() as c:
        return int(c.scalar(select(func.count()).select_from(Inference)) or 0)


def rolled_up(engine: Engine) -> int:
    with engine.connect() as c:
        return int(c.scalar(select(func.coalesce(func.sum(InferenceRollup.inferences), 0))) or 0)


def wait_for(predicate: Any, timeout_s: float = 30) -> float:
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout_s, "timed out"
        time.sleep(0.05)
    return time.monotonic() - start


@pytest.fixture
def engine(pg_engine: Engine) -> Engine:
    return pg_engine


def started(engine: Engine, root: Path, **options: Any) -> InferenceLog:
    log = InferenceLog(SqlSink(engine), root, ship_every_s=0.05, retry_s=0.2, **options)
    log.start()
    return log


def test_records_reach_the_table_and_its_rollups(engine: Engine, tmp_path: Path) -> None:
    log = started(engine, tmp_path / "log", batch=50)
    for i in range(0, 300, 30):
        log.append([record(j) for j in range(i, i + 30)])
    wait_for(lambda: count(engine) == 300)
    log.stop()
    assert rolled_up(engine) == 300
    assert log.stats["appended"] == log.stats["shipped"] == 300
    assert not list((tmp_path / "log").iterdir())  # all shipped: the folder is gone


def test_postgres_outage_loses_nothing(engine: Engine, tmp_path: Path,
                                       postgres_outage: PostgresOutage) -> None:
    log = started(engine, tmp_path / "log")
    postgres_outage.stop()
    started_at = time.perf_counter()
    for i in range(0, 400, 10):
        log.append([record(j) for j in range(i, i + 10)])
    assert time.perf_counter() - started_at < 1  # appends never wait for the database
    wait_for(lambda: log.shipper is not None and log.shipper.down is not None)
    assert "records kept on local disk" in log.state()
    postgres_outage.start()
    wait_for(lambda: count(engine) == 400, timeout_s=60)
    log.stop()
    assert log.state() == "ok" and rolled_up(engine) == 400


def test_stop_keeps_shipping_through_a_short_outage(engine: Engine, tmp_path: Path,
                                                     postgres_outage: PostgresOutage) -> None:
    """A gateway stopped while the database blinks (a rolling restart of both) still ships
    all it answered before it exits."""
    log = started(engine, tmp_path / "log", drain_s=30)
    postgres_outage.stop()
    for i in range(0, 100, 10):
        log.append([record(j) for j in range(i, i + 10)])
    back = threading.Timer(2.0, postgres_outage.start)
    back.start()
    log.stop()
    back.join()
    assert count(engine) == 100 and log.shipper is not None and log.shipper.pending == 0
    assert not list((tmp_path / "log").iterdir())


def test_a_gateway_scaled_down_during_an_outage_is_shipped_by_the_other(
        engine: Engine, tmp_path: Path, postgres_outage: PostgresOutage) -> None:
    """Two gateways share one log root; one is stopped for good while PostgreSQL is down: the
    other claims what it left and ships it when the database is back."""
    root = tmp_path / "log"
    staying, leaving = started(engine, root), started(engine, root, drain_s=0.5)
    postgres_outage.stop()
    leaving.append([record(i) for i in range(50)])
    staying.append([record(i) for i in range(50, 60)])
    leaving.stop()
    assert leaving.shipper is not None and leaving.shipper.pending == 50
    postgres_outage.start()
    wait_for(lambda: count(engine) == 60, timeout_s=30)
    staying.stop()
    assert len(list(root.iterdir())) == 0


def test_a_dead_processs_folder_is_claimed_and_shipped_once(engine: Engine,
                                                             tmp_path: Path) -> None:
    root = tmp_path / "log"
    records = [record(i) for i in range(20)]
    # Shipped before it died; the position was not saved.
    SqlSink(engine).write([encode(r) for r in records[:10]])
    dead = LogFolder.create(root)
    writer = SegmentWriter(dead.path, 1 << 20)
    writer.append([encode(r) for r in records])
    writer.close()
    with open(next(dead.path.glob("*.wal")), "ab") as f:
        f.write(b"PHL1\x00\x00\x01\x00")  # a frame its SIGKILL cut short
    dead.release()  # what the kernel does when the process dies

    log = started(engine, root)
    wait_for(lambda: not dead.path.exists())
    log.stop()
    assert count(engine) == 20 and rolled_up(engine) == 20  # none twice, rollups too


def test_a_dead_folder_larger_than_one_read_is_shipped_whole(engine: Engine,
                                                              tmp_path: Path) -> None:
    root = tmp_path / "log"
    dead = LogFolder.create(root)
    writer = SegmentWriter(dead.path, 1 << 30)
    writer.append([encode(record(i, input_text="long text " * 250)) for i in range(3000)])
    writer.close()  # ~7.7 MB in one segment: more than one read of the shipper
    dead.release()
    log = started(engine, root, batch=2000)
    wait_for(lambda: not dead.path.exists())
    log.stop()
    assert count(engine) == 3000


def test_a_poison_record_is_set_aside_and_the_rest_flow(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as c:  # the database refuses one value (a constraint added by a DBA)
        c.execute(text("ALTER TABLE inferences ADD CONSTRAINT no_poison "
                       "CHECK (input_text <> 'poison')"))
    log = started(engine, tmp_path / "log")
    batch = [record(i) for i in range(200)]
    batch[117]["input_text"] = "poison"
    log.append(batch)
    shipped_s = wait_for(lambda: count(engine) == 199, timeout_s=5)
    log.append([record(1000)])
    wait_for(lambda: count(engine) == 200, timeout_s=5)
    log.stop()
    lines = (tmp_path / "log" / "dead-letter.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["record"]["id"] == batch[117]["id"]
    assert "CheckViolation" in json.loads(lines[0])["error"]
    assert log.stats["quarantined"] == 1 and log.stats["shipped"] == 200
    assert shipped_s < 5


@pytest.mark.parametrize("payload", [b"not json", b"\xff\xfe not utf-8", b"[1, 2]", b"7",
                                     b'{"id": "x", "created_at": "yesterday"}',
                                     b'{"id": "x", "created_at": null}'])
def test_a_payload_that_is_no_record_is_refused_alone(engine: Engine, payload: bytes) -> None:
    good = encode(record(0))
    with pytest.raises(SinkRejected):
        SqlSink(engine).write([good, payload])
    assert count(engine) == 0  # nothing of a refused batch stays
    assert SqlSink(engine).write([good]) == 1


def test_every_string_column_takes_a_value_at_and_past_its_limit(engine: Engine,
                                                                 tmp_path: Path) -> None:
    from services.gateway.inference_log.records import LIMITS
    log = started(engine, tmp_path / "log")
    for name, limit in LIMITS.items():
        log.append([record(0, **{name: "x" * limit}), record(1, **{name: "y" * (limit + 1)})])
    wait_for(lambda: count(engine) == 2 * len(LIMITS), timeout_s=10)
    log.stop()
    assert log.stats["quarantined"] == 0 and "request_id" in LIMITS


def test_an_unwritable_log_dir_writes_to_the_database(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    log = started(engine, tmp_path / "file" / "log")
    log.append([record(i) for i in range(5)])
    wait_for(lambda: count(engine) == 5)
    assert log.state().startswith("local log unwritable")
    log.stop()
    assert log.stats["direct"] == 5 and not log.stats["dropped"]


def test_what_waits_for_the_database_is_bounded_in_bytes(tmp_path: Path) -> None:
    """The local log unwritable and the database not taking writes yet: records wait in
    memory up to ``direct_max_bytes``, then are dropped and counted, never held unbounded."""
    (tmp_path / "file").write_text("not a folder")
    dead = make_engine("postgresql://root@127.0.0.1:1/none")
    log = InferenceLog(SqlSink(dead), tmp_path / "file" / "log", direct_max_bytes=8192)
    for i in range(100):  # not started: nothing drains, as if every write hung
        log.append([record(i, input_text="t" * 500)])
    waiting = log._direct.qsize()
    assert 0 < waiting < 20 and log._direct_bytes <= 8192
    assert log.stats["dropped"] == 100 - waiting
    dead.dispose()


def test_required_answers_503_when_nothing_can_take_the_record(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    dead = make_engine("postgresql://root@127.0.0.1:1/none")
    log = InferenceLog(SqlSink(dead), tmp_path / "file" / "log", required=True)
    with pytest.raises(Unavailable):
        log.append([record(0)])
    dead.dispose()


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 256 KiB filesystem: writes fail with ENOSPC once it is full."""
    with small_disk(tmp_path / "small", "256k") as path:
        yield path


def test_a_full_disk_loses_nothing_silently(engine: Engine, full_disk: Path) -> None:
    log = started(engine, full_disk / "log", segment_bytes=1 << 30)
    answered = 0
    for i in range(0, 2000, 20):  # ~600 KB of records: the disk fills up part way
        log.append([record(j, input_text="t" * 200) for j in range(i, i + 20)])
        answered += 20
    wait_for(lambda: log.stats["shipped"] + log.stats["direct"] == answered)
    log.stop()
    stats = log.stats
    assert stats["appended"] and stats["direct"] and not stats["dropped"]
    assert stats["shipped"] == stats["appended"]  # never a record read past a failed write
    assert stats["appended"] + stats["direct"] == answered == count(engine)


def test_spool_files_of_the_previous_version_are_shipped(engine: Engine,
                                                          tmp_path: Path) -> None:
    root = tmp_path / "log"
    root.mkdir()
    records = [record(i) for i in range(7)]
    lines = "".join(json.dumps(r, default=str) + "\n" for r in records) + '{"id": "tor'
    (root / "spool-123-1-1.jsonl").write_text(lines)
    log = started(engine, root)
    wait_for(lambda: count(engine) == 7)
    log.stop()
    assert not list(root.glob("spool-*"))


def test_texts_reach_the_table_verbatim(engine: Engine, tmp_path: Path) -> None:
    texts = ["back\\slash \\n not a newline", "tab\tnew\nline\r", 'quote " \\" end',
             "emoji 🙂 and RTL שלום", "\\", "\\\\N", "\u2028 separator"]
    log = started(engine, tmp_path / "log")
    log.append([record(i, input_text=t) for i, t in enumerate(texts)])
    wait_for(lambda: count(engine) == len(texts))
    log.stop()
    with engine.connect() as c:
        assert set(c.scalars(select(Inference.input_text))) == set(texts)
