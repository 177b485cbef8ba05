"""Daily partitions on a real PostgreSQL (and retention on SQLite): maintain() creates the missing
days and only those, moves the rows the DEFAULT partition caught into their new partition, drops
whole days past retention while keeping newer ones, and two callers at once both succeed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from shared.db import make_engine
from shared.db.migrate import upgrade
from shared.db.models import Inference
from shared.db.partitions import maintain, partition_days, partition_name
from tests.shared.test_migration_0006 import records

DAY = datetime.now(UTC).date() + timedelta(days=100)  # no partition exists for it yet


def at(day: date, hour: int = 1) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


@pytest.fixture
def engine(pg_engine: Engine) -> Engine:
    return pg_engine


def insert(engine: Engine, n: int, start: datetime, prefix: str) -> set[str]:
    rows = [r | {"id": f"{prefix}{i}"} for i, r in enumerate(records(n, start))]
    with engine.begin() as c:
        c.execute(Inference.__table__.insert(), rows)
    return {r["id"] for r in rows}


def placement(engine: Engine) -> dict[str, set[str]]:
    """``{partition: ids}``: where each row is stored."""
    with engine.connect() as c:
        rows = c.execute(text("SELECT tableoid::regclass::text, id FROM inferences")).all()
    return {t: {i for table, i in rows if table == t} for t, _ in rows}


def test_maintain_creates_the_days_ahead_once(engine: Engine) -> None:
    days = [DAY + timedelta(days=n) for n in range(-1, 8)]
    assert maintain(engine, now=at(DAY))["created"] == [partition_name(d) for d in days]
    assert maintain(engine, now=at(DAY)) == {"created": [], "dropped": [], "moved": 0,
                                             "deleted": 0}
    with engine.connect() as c:
        assert set(days) <= set(partition_days(c))


def test_rows_caught_by_the_default_partition_move_into_their_day(engine: Engine) -> None:
    ids = insert(engine, 4, at(DAY, 20), "d")  # 20:00 .. 00:51: two days, no partitions
    assert placement(engine) == {"inferences_default": ids}
    assert maintain(engine, now=at(DAY))["moved"] == 4
    where = placement(engine)
    assert set(where) == {partition_name(DAY), partition_name(DAY + timedelta(days=1))}
    assert set().union(*where.values()) == ids


def test_retention_drops_whole_days_and_keeps_newer_ones(engine: Engine) -> None:
    maintain(engine, now=at(DAY))
    insert(engine, 2, at(DAY - timedelta(days=1)), "old")
    insert(engine, 2, at(DAY - timedelta(days=40)), "default")  # no partition: DEFAULT
    kept = insert(engine, 2, at(DAY + timedelta(days=1)), "new")
    done = maintain(engine, now=at(DAY + timedelta(days=3), 23), retention_days=2)
    assert {partition_name(DAY - timedelta(days=1)), partition_name(DAY)} <= set(done["dropped"])
    assert partition_name(DAY + timedelta(days=1)) not in done["dropped"]
    assert done["deleted"] == 2
    assert placement(engine) == {partition_name(DAY + timedelta(days=1)): kept}
    with engine.connect() as c:
        assert min(partition_days(c)) == DAY + timedelta(days=1)


def test_two_callers_at_once_both_succeed(engine: Engine) -> None:
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: maintain(engine, now=at(DAY)), range(2)))
    created = results[0]["created"] + results[1]["created"]
    assert sorted(created) == [partition_name(DAY + timedelta(days=n)) for n in range(-1, 8)]


def test_sqlite_retention_deletes_old_rows(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/db.sqlite")
    upgrade(engine)
    insert(engine, 2, at(DAY - timedelta(days=5)), "old")
    kept = insert(engine, 2, at(DAY - timedelta(days=1)), "new")
    assert maintain(engine, now=at(DAY))["deleted"] == 0
    assert maintain(engine, now=at(DAY), retention_days=2)["deleted"] == 2
    with engine.connect() as c:
        assert set(c.execute(text("SELECT id FROM inferences")).scalars()) == kept
    engine.dispose()
