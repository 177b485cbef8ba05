"""Daily partitions of the inference log on PostgreSQL: created ahead, dropped past retention.

There, ``inferences`` is partitioned by range of ``created_at``: one partition per UTC day,
named ``inferences_pYYYYMMDD``, plus the DEFAULT partition ``inferences_default``, which takes
the rows of any day that has no partition (so an insert never fails for lack of one).
:func:`maintain` is cheap when nothing is due, so every service may call it hourly. Retention
drops raw rows only: the hourly rollups (:mod:`shared.db.rollups`) are kept, as they are small
and reports read them. SQLite has one plain table: retention deletes rows, nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, text

from shared.db.engine import is_postgres
from shared.db.migrate import _LOCK_ID  # the one lock of schema changes, migrations included
from shared.db.types import UTCDateTime, utcnow

PARENT, DEFAULT = "inferences", "inferences_default"
_NAME = re.compile(r"inferences_p(\d{8})")


def partition_name(day: date) -> str:
    return f"inferences_p{day:%Y%m%d}"


def partition_days(connection: Connection) -> dict[date, str]:
    """The daily partitions ``inferences`` has: ``{day: table name}``."""
    names = connection.execute(text(
        "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(:parent)"), {"parent": PARENT}).scalars()
    return {datetime.strptime(m[1], "%Y%m%d").date(): m[0]
            for name in names if (m := _NAME.fullmatch(name))}


def create_partitions(connection: Connection, days: Iterable[date]) -> tuple[list[str], int]:
    """Create the partitions of ``days`` that are missing: the names created and the number of
    rows moved into them from the DEFAULT partition.

    Each is created as a plain table, filled with its day's rows taken from the DEFAULT
    partition, then attached; the DEFAULT partition stays locked meanwhile, so no row of that
    day can land there in between and make the attach fail.
    """
    existing = partition_days(connection)
    created, moved = [], 0
    for day in sorted(set(days) - set(existing)):
        name = partition_name(day)
        lo, hi = _midnight(day), _midnight(day + timedelta(days=1))
        # Table names and bounds are formatted from a date, never from input (DDL takes no
        # bound parameters); the row filter is bound.
        connection.execute(text(f"LOCK TABLE {DEFAULT} IN ACCESS EXCLUSIVE MODE"))
        connection.execute(text(f"CREATE TABLE {name} (LIKE {PARENT})"))
        moved += connection.execute(text(
            f"WITH day AS (DELETE FROM {DEFAULT} WHERE created_at >= :lo AND created_at < :hi "
            f"RETURNING *) INSERT INTO {name} SELECT * FROM day"),  # nosec B608
            {"lo": lo, "hi": hi}).rowcount
        connection.execute(text(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} "
                                f"FOR VALUES FROM ('{lo.isoformat()}') TO ('{hi.isoformat()}')"))
        created.append(name)
    return created, moved


def maintain(engine: Engine, *, days_ahead: int = 7, retention_days: int | None = None,
             now: datetime | None = None) -> dict[str, Any]:
    """Create the partitions of yesterday ... today + ``days_ahead`` that are missing and, with
    ``retention_days``, drop the raw rows of every UTC day that ended more than
    ``retention_days`` ago (whole partitions, and such rows left in the DEFAULT partition).

    Safe from several processes at once (one transaction, under the advisory lock migrations
    take) and cheap when there is nothing to do. Returns what it did: ``created`` and
    ``dropped`` (partition names), ``moved`` (rows taken from the DEFAULT partition into new
    ones) and ``deleted`` (rows deleted one by one).
    """
    now = (now or utcnow()).astimezone(UTC)
    horizon = (_midnight((now - timedelta(days=retention_days)).date())
               if retention_days is not None else None)
    done: dict[str, Any] = {"created": [], "dropped": [], "moved": 0, "deleted": 0}
    with engine.begin() as connection:
        if not is_postgres(engine):
            if horizon is not None:
                done["deleted"] = _delete_before(connection, PARENT, horizon)
            return done
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        # Never queue for long behind a slow query: every insert would queue behind us.
        connection.execute(text("SET LOCAL lock_timeout = '10s'"))
        if horizon is not None:  # first, as dropping locks the parent before anything else
            for day, name in sorted(partition_days(connection).items()):
                if _midnight(day) < horizon:
                    connection.execute(text(f"DROP TABLE {name}"))  # a name made from a date
                    done["dropped"].append(name)
            done["deleted"] = _delete_before(connection, DEFAULT, horizon)
        today = now.date()
        days = [today + timedelta(days=n) for n in range(-1, days_ahead + 1)]
        done["created"], done["moved"] = create_partitions(
            connection, [d for d in days if horizon is None or _midnight(d) >= horizon])
    return done


def _delete_before(connection: Connection, table: str, horizon: datetime) -> int:
    # ``table`` is one of this module's constants.
    statement = text(f"DELETE FROM {table} WHERE created_at < :horizon")  # nosec B608
    return connection.execute(statement.bindparams(
        bindparam("horizon", horizon, type_=UTCDateTime()))).rowcount


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)
