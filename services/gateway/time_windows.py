"""The time window of a report, series, comparison or review: the ``from`` / ``to`` query
values in UTC (a naive time is taken as UTC), ``to`` defaulting to now and ``from`` to a
default length before it; 422 for an empty window, one too long or one out of range."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from shared.db.types import utcnow
from shared.errors import InvalidInput

Window = tuple[datetime, datetime]


def window(start: datetime | None, end: datetime | None, *, default: timedelta,
           longest: timedelta | None = None,
           rounded: Callable[[datetime, datetime], Window] | None = None) -> Window:
    """``(start, end)`` in UTC, through ``rounded`` when given (e.g. whole hours; an
    ``OverflowError`` there is out of range too)."""
    try:
        end = utc(end) if end else utcnow()
        start = utc(start) if start else end - default
        if start >= end:
            raise InvalidInput("from must be before to", param="from")
        if longest is not None and end - start > longest:
            raise InvalidInput(f"the window is at most {longest.days} days", param="from")
        return rounded(start, end) if rounded else (start, end)
    except OverflowError:
        earliest = f"{(datetime.min + default).isoformat()}Z"
        raise InvalidInput(f"from and to must lie between {earliest} and "
                           "9999-12-31T23:00:00Z", param="from") from None


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
