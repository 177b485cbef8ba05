"""Every inference becomes one database row, off the request path, and none is ever lost.

Requests hand records to :meth:`InferenceLog.submit`, which only puts them in a bounded
in-memory buffer (or, if that is full, appends them to the spool). Every ``flush_interval_s``
a writer thread takes what the buffer holds and writes it in batches (``COPY`` on PostgreSQL,
a multi-row ``INSERT`` on SQLite). When the database fails, batches go to the **spool**: append-only JSON-lines files,
fsync'd, one per process. Every ``retry_interval_s`` the writer tries the database again and,
once it answers, replays the spool files (its own and those a crashed process left behind,
each claimed with a file lock) and deletes them. The inference id is the primary key, so a
record replayed twice is stored once. :meth:`InferenceLog.stop` drains everything before exit.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import queue
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shared.db.models import Inference

log = logging.getLogger(__name__)
Record = dict[str, Any]


class Spool:
    """Append-only, fsync'd JSON-lines files in ``folder``; this process writes its own file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._serial = 0
        self._path: Path | None = None

    def append(self, records: list[Record]) -> None:
        data = "".join(json.dumps(r, default=_json_default) + "\n" for r in records).encode()
        with self._lock:
            if self._path is None:
                self._serial += 1
                self._path = self.folder / f"spool-{os.getpid()}-{int(time.time())}-{self._serial}.jsonl"
            with open(self._path, "ab") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())

    def rotate(self) -> None:
        """Start a new file on the next append, so the current one can be replayed."""
        with self._lock:
            self._path = None

    def current(self) -> Path | None:
        with self._lock:
            return self._path

    def files(self) -> list[Path]:
        return sorted(self.folder.glob("spool-*.jsonl"))

    def pending(self) -> bool:
        return any(p.stat().st_size for p in self.files())


def read_spool(path: Path) -> list[Record]:
    records = []
    for line_no, line in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            records.append(json.loads(line))
        except ValueError:  # only a crash mid-write leaves a broken (last) line
            log.warning("spool %s: line %d is not JSON (partial write?); skipped", path, line_no)
    return records


class InferenceLog:
    def __init__(self, engine: Engine, spool_dir: Path, *, buffer_size: int = 10_000,
                 batch_size: int = 500, flush_interval_s: float = 0.5,
                 retry_interval_s: float = 1.0) -> None:
        self.engine = engine
        self.spool = Spool(spool_dir)
        self.batch_size, self.flush_interval_s = batch_size, flush_interval_s
        self.retry_interval_s = retry_interval_s
        self._buffer: queue.Queue[Any] = queue.Queue(maxsize=buffer_size)
        self._thread = threading.Thread(target=self._run, name="inference-log", daemon=True)
        self._stopping = threading.Event()
        self._next_try = 0.0  # when the database may be tried again (0: now)
        self.db_ok = True
        self.stats = {"written": 0, "spooled": 0, "replayed": 0, "overflow": 0}

    # Request side ------------------------------------------------------------------------------

    def submit(self, records: list[Record]) -> None:
        """Never raises, never waits for the database."""
        try:
            for i, record in enumerate(records):
                try:
                    self._buffer.put_nowait(record)
                except queue.Full:  # the database is slow or down: straight to the spool
                    rest = records[i:]
                    self.spool.append(rest)
                    self.stats["overflow"] += len(rest)
                    return
        except Exception:  # noqa: BLE001 - a full disk must still not fail a prediction
            log.exception("inference log: could not buffer or spool %d records", len(records))

    def backlog(self) -> int:
        return self._buffer.qsize()

    # Writer thread ------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Flush the buffer (to the database, or the spool), then end the writer."""
        self._stopping.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        # Wake every flush interval and take what is there, rather than waking per record:
        # at a few hundred records a second, per-record wake-ups cost more CPU than the inserts.
        while True:
            stopping = self._stopping.wait(self.flush_interval_s)
            batch = self._drain()
            if self.spool.pending() and time.monotonic() >= self._next_try:
                self._replay()
            for start in range(0, len(batch), self.batch_size):
                self._write_or_spool(batch[start:start + self.batch_size])
            if stopping:
                rest = self._drain()  # submitted while we wrote
                if rest:
                    self._write_or_spool(rest)
                if self.db_ok and self.spool.pending():
                    self._replay()
                return

    def _drain(self) -> list[Record]:
        out = []
        while True:
            try:
                out.append(self._buffer.get_nowait())
            except queue.Empty:
                return out

    def _write_or_spool(self, batch: list[Record]) -> None:
        if time.monotonic() >= self._next_try and self._insert(batch, fresh=True):
            self.stats["written"] += len(batch)
            return
        try:
            self.spool.append(batch)
            self.stats["spooled"] += len(batch)
        except Exception:  # noqa: BLE001
            log.exception("inference log: spool write failed; %d records kept in memory", len(batch))
            for record in batch:  # last resort: back into the buffer, retried later
                self.submit([record])

    def _insert(self, records: list[Record], *, fresh: bool = False) -> bool:
        """Write records; False (and the database marked down) on any failure.

        Fresh batches on PostgreSQL go in with ``COPY`` (about 3x less CPU per row than a
        multi-row INSERT): their ids are new, so no conflict is possible. Replays use
        ``INSERT ... ON CONFLICT DO NOTHING``: a record may already be there.
        """
        try:
            postgres = self.engine.dialect.name == "postgresql"
            with self.engine.begin() as connection:
                if postgres and fresh:
                    _copy(connection, records)
                else:
                    insert = pg_insert if postgres else sqlite_insert
                    statement = insert(Inference).on_conflict_do_nothing(index_elements=["id"])
                    for start in range(0, len(records), self.batch_size):
                        connection.execute(statement, [_row(r) for r in
                                                       records[start:start + self.batch_size]])
        except Exception as exc:  # noqa: BLE001 - any database failure: spool and retry later
            if self.db_ok:
                log.warning("inference database unavailable (%s); spooling to %s",
                            type(exc).__name__, self.spool.folder)
            self.db_ok = False
            self._next_try = time.monotonic() + self.retry_interval_s
            return False
        if not self.db_ok:
            log.info("inference database is back")
        self.db_ok, self._next_try = True, 0.0
        return True

    def _replay(self) -> None:
        self.spool.rotate()  # from here on, appends go to a new file; the old ones are closed
        for path in self.spool.files():
            if path == self.spool.current():
                continue
            try:
                with open(path, "rb+") as handle:
                    try:  # another process may be replaying (or writing) this one
                        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue
                    if self._is_live(path):
                        continue
                    records = read_spool(path)
                    if records and not self._insert(records):
                        return  # still down: try again later
                    path.unlink()
                    self.stats["replayed"] += len(records)
                    log.info("replayed %d spooled inferences from %s", len(records), path.name)
            except FileNotFoundError:
                continue

    def _is_live(self, path: Path) -> bool:
        """A spool file another running process is still appending to (not ours, pid alive)."""
        pid = int(path.name.split("-")[1])
        if pid == os.getpid():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


_COLUMNS = [c.name for c in Inference.__table__.columns]


def _copy(connection: Any, records: list[Record]) -> None:
    cursor = connection.connection.driver_connection.cursor()
    with cursor, cursor.copy(f"COPY inferences ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
        for record in records:
            row = _row(record)
            copy.write_row([json.dumps(row[c]) if c == "top_k" else row.get(c)
                            for c in _COLUMNS])


def _row(record: Record) -> Record:
    row = dict(record)
    for key in ("created_at", "feedback_at"):
        if isinstance(row.get(key), str):
            row[key] = datetime.fromisoformat(row[key])
    return row


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
