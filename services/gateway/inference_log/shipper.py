"""The shipper: one thread that moves the local log into the database, in order.

Each pass ships this process's folder, then any folder a dead process left (claimed with its
lock, see :mod:`.folders`): whole frames in batches, the position saved after each committed
batch, fully shipped segments deleted. A batch the database refuses for its data is split in
halves until the record at fault is found; that one goes to the dead-letter file and the
rest go on. Only :class:`SinkDown` stops a pass: the next one, ``retry_s`` later, resumes
where the position says. An exception from a bug is logged and counted; shipping goes on.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

from services.gateway.inference_log import metrics
from services.gateway.inference_log.dead_letter import DeadLetter
from services.gateway.inference_log.folders import LogFolder
from services.gateway.inference_log.records import decode
from services.gateway.inference_log.sink import Sink, SinkDown, SinkRejected
from services.gateway.inference_log.wal import SegmentWriter, count_frames, read_frames, segments

log = logging.getLogger(__name__)


class Shipper:
    def __init__(self, own: LogFolder, writer: SegmentWriter, sink: Sink, *, batch: int,
                 claim_every_s: float = 2.0, stats: Counter[str] | None = None) -> None:
        self.own, self.writer, self.sink, self.batch = own, writer, sink, batch
        self.root: Path = own.path.parent
        self.dead_letter = DeadLetter(self.root / "dead-letter.jsonl")
        self.claim_every_s, self._next_claim = claim_every_s, 0.0
        self.claimed: dict[Path, LogFolder] = {}
        self.stats: Counter[str] = stats if stats is not None else Counter()
        self.down: str | None = None  # why the last pass stopped early, if it did
        self.down_since: float | None = None
        self.oldest: datetime | None = None  # the oldest record read and not yet shipped
        self.pending = 0  # records on disk not yet settled (own: appended - settled)
        self._lock = threading.Lock()

    def ship(self) -> bool:
        """One pass over every folder we hold; True when all is shipped (for now)."""
        self._claim()
        try:
            done = self._ship_folder(self.own, live=True)
            for path, folder in list(self.claimed.items()):
                if self._ship_folder(folder, live=False):
                    folder.remove()
                    del self.claimed[path]
                    log.info("inference log: shipped everything %s had left", path.name)
                else:
                    done = False
        except SinkDown as down:
            if self.down is None:
                log.warning("inference log: database unavailable (%s); records wait on local "
                            "disk in %s", down.kind, self.root)
                self.down_since = time.monotonic()
            self.down = down.kind
            metrics.ERRORS.labels(down.kind).inc()
            return False
        if self.down is not None:
            log.info("inference log: database is back; shipping resumed")
            self.down, self.down_since = None, None
        if done:
            self.oldest = None
        return done

    def added(self, records: int) -> None:
        with self._lock:
            self.pending += records

    def _settled(self, records: int) -> None:
        with self._lock:
            self.pending -= records

    def _claim(self) -> None:
        if time.monotonic() < self._next_claim:
            return
        self._next_claim = time.monotonic() + self.claim_every_s
        for path in LogFolder.others(self.root, self.own.path):
            if path not in self.claimed and (folder := LogFolder.claim(path)):
                name, offset = folder.position()
                waiting = sum(count_frames(p, offset if p.name == name else 0)
                              for p in segments(path) if p.name >= name)
                self.added(waiting)
                self.claimed[path] = folder
                log.info("inference log: claimed %s (its process is gone): %d records to ship",
                         path.name, waiting)

    def _ship_folder(self, folder: LogFolder, *, live: bool) -> bool:
        name, offset = folder.position()
        for path in segments(folder.path):
            if path.name < name:  # shipped before a crash could delete it
                path.unlink(missing_ok=True)
                continue
            if path.name > name:
                name, offset = path.name, 0
            while True:
                current, written = self.writer.extent() if live else (None, 0)
                growing = path.name == current
                frames = read_frames(path, offset, self.batch, written if growing else None)
                if frames.corrupt:
                    metrics.ERRORS.labels("corrupt").inc(frames.corrupt)
                    log.error("inference log: %d corrupt frame(s) skipped in %s",
                              frames.corrupt, path)
                self._deliver(frames.payloads)
                if frames.end != offset:
                    offset = frames.end
                    folder.save_position(name, offset)
                if len(frames.payloads) == self.batch or frames.more:
                    continue
                if growing:
                    return True  # caught up with our own writer
                if frames.incomplete:  # a killed process's last, half-written frame
                    metrics.ERRORS.labels("torn").inc()
                    log.warning("inference log: a torn frame at the end of %s skipped", path)
                break
            path.unlink()  # every whole frame of it is in the database
        return True

    def _deliver(self, payloads: list[bytes]) -> None:
        if not payloads:
            return
        with contextlib.suppress(ValueError):  # the sink will refuse it; the split sets it aside
            self.oldest = decode(payloads[0])["created_at"]
        self._write(payloads)

    def _write(self, payloads: list[bytes]) -> None:
        try:
            self.sink.write(payloads)
        except SinkRejected as exc:
            if len(payloads) == 1:
                self._quarantine(payloads[0], str(exc))
                return
            half = len(payloads) // 2
            self._write(payloads[:half])
            self._write(payloads[half:])
            return
        self._count("shipped", len(payloads))

    def _quarantine(self, payload: bytes, error: str) -> None:
        try:
            self.dead_letter.put(payload, error)
        except OSError:
            log.exception("inference log: could not write the dead-letter file; record dropped")
            self._count("dropped", 1)
            return
        self._count("quarantined", 1)

    def _count(self, outcome: str, records: int) -> None:
        metrics.RECORDS.labels(outcome).inc(records)
        self.stats[outcome] += records
        self._settled(records)

    def backlog_bytes(self) -> int:
        total = 0
        for folder in [self.own, *self.claimed.values()]:
            name, offset = folder.position()
            for path in segments(folder.path):
                if path.name >= name:
                    try:
                        total += path.stat().st_size - (offset if path.name == name else 0)
                    except FileNotFoundError:
                        continue
        return max(total, 0)

    def finish(self) -> None:
        """At exit: remove our folder if all of it is shipped, else hand it (and any folder
        we claimed) to whoever starts next."""
        if next(segments(self.own.path), None) is None:
            self.own.remove()
        else:
            self.own.release()
        for folder in self.claimed.values():
            folder.release()
        self.claimed.clear()

