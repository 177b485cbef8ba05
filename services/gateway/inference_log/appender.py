"""The inference log as the gateway uses it: append before answering, ship in the background.

:meth:`InferenceLog.append` writes a prediction's records to this process's segment (one
``write(2)``, no fsync: microseconds) before the response goes out. Three threads do the rest:
``inference-log-sync`` fsyncs every ``fsync_ms`` and rotates full segments,
``inference-log-ship`` runs the :class:`.Shipper`, and ``inference-log-direct`` writes
records straight to the database when the local log cannot be written (disk full, no
permission); what waits for it is bounded in bytes (``direct_max_bytes``). Only if that fails
too is a record dropped, and counted; with ``required`` such a prediction answers 503 instead.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson

from services.gateway.inference_log import metrics
from services.gateway.inference_log.folders import LogFolder
from services.gateway.inference_log.records import Record, encode, fit
from services.gateway.inference_log.shipper import Shipper
from services.gateway.inference_log.sink import Sink, SinkDown, SinkRejected
from services.gateway.inference_log.wal import SegmentWriter
from shared.errors import Unavailable

log = logging.getLogger(__name__)


class InferenceLog:
    def __init__(self, sink: Sink, root: Path, *, batch: int = 2000, ship_every_s: float = 0.5,
                 retry_s: float = 1.0, fsync_ms: float = 200, segment_bytes: int = 16 << 20,
                 required: bool = False, direct_max_bytes: int = 64 << 20,
                 maintain: Callable[[], object] | None = None,
                 maintain_every_s: float = 3600, drain_s: float = 20.0) -> None:
        self.sink, self.root, self.required = sink, root, required
        self.ship_every_s, self.retry_s, self.fsync_s = ship_every_s, retry_s, fsync_ms / 1000
        self.maintain, self.maintain_every_s = maintain, maintain_every_s
        self.drain_s = drain_s
        self.stats: Counter[str] = Counter()
        self.local_error: str | None = None  # why the local log cannot be written, if it can't
        self.writer: SegmentWriter | None = None
        self.shipper: Shipper | None = None
        try:
            folder = LogFolder.create(root)
        except OSError as exc:
            self._local_failed(exc)
        else:
            self.writer = SegmentWriter(folder.path, segment_bytes)
            self.shipper = Shipper(folder, self.writer, sink, batch=batch, stats=self.stats)
            self._adopt_spool_files()
        self._direct: queue.Queue[list[bytes]] = queue.Queue()
        self._direct_bytes, self.direct_max_bytes = 0, direct_max_bytes
        self._direct_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=target, name=f"inference-log-{name}",
                                          daemon=True)
                         for name, target in (("sync", self._sync_loop),
                                              ("ship", self._ship_loop),
                                              ("direct", self._direct_loop))]

    # Request side --------------------------------------------------------------------------

    def append(self, records: list[Record]) -> None:
        """Never raises (unless ``required`` and no store took them: 503), never waits for the
        database."""
        records = [fit(r) for r in records]
        if self.writer is not None:
            try:
                self.writer.append([encode(r) for r in records])
            except OSError as exc:
                self._local_failed(exc)
            else:
                self.local_error = None
                self._count("appended", len(records))
                if self.shipper is not None:
                    self.shipper.added(len(records))
                return
        if self.required:
            self._count("refused", len(records))
            raise Unavailable("this prediction could not be logged, and the log is required; "
                              "retry shortly", retry_after_s=1)
        payloads = [encode(r) for r in records]
        size = sum(map(len, payloads))
        with self._direct_lock:
            taken = self._direct_bytes + size <= self.direct_max_bytes
            if taken:
                self._direct_bytes += size
                self._direct.put_nowait(payloads)
        if not taken:
            self._count("dropped", len(records))
            log.error("inference log: %d records dropped (local log failing, %d bytes of "
                      "database writes waiting already)", len(records), self._direct_bytes)

    def _local_failed(self, exc: OSError) -> None:
        if self.local_error is None:
            log.error("inference log: cannot write the local log in %s (%s); writing to the "
                      "database directly", self.root, exc)
        self.local_error = f"{type(exc).__name__}: {exc.strerror or exc}"
        metrics.ERRORS.labels("local_write").inc()

    def _count(self, outcome: str, records: int) -> None:
        if outcome != "refused":
            metrics.RECORDS.labels(outcome).inc(records)
        self.stats[outcome] += records

    def _adopt_spool_files(self) -> None:
        """Move the JSON-lines spool files of polyhead 0.1 (``spool-*.jsonl``, left in this
        folder when it was ``GATEWAY_SPOOL_DIR``) into the log, so an upgrade loses none."""
        for path in sorted(self.root.glob("spool-*.jsonl")):
            records = []
            for line in path.read_bytes().splitlines():
                try:
                    records.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    continue  # a torn last line: that write never completed
            self.append(records)
            path.unlink()
            log.info("inference log: %d records of %s moved into the log", len(records),
                     path.name)

    # Threads -------------------------------------------------------------------------------

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Fsync, then ship until everything is in the database or ``drain_s`` has passed (a
        database down for a moment during a rolling restart costs nothing), and hand over what
        is left on disk: to whoever starts next on this folder, or to any live gateway sharing
        the log's root (:mod:`.folders`)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)
        if self.writer is not None:
            self.writer.close()
        if self.shipper is not None:
            deadline = time.monotonic() + self.drain_s
            while not _supervised("shipper", self.shipper.ship) \
                    and time.monotonic() + self.retry_s < deadline:
                time.sleep(self.retry_s)
            if self.shipper.pending:
                log.warning("inference log: %d records left on disk in %s at exit; shipped by "
                            "the next gateway on this log", self.shipper.pending, self.root)
            self.shipper.finish()

    def _sync_loop(self) -> None:
        while not self._stop.wait(self.fsync_s):
            if self.writer is not None:
                _supervised("sync", self.writer.sync)

    def _ship_loop(self) -> None:
        next_maintenance = 0.0
        while True:
            if self.maintain is not None and time.monotonic() >= next_maintenance:
                next_maintenance = time.monotonic() + self.maintain_every_s
                _supervised("maintenance", self.maintain)
            if self.shipper is not None:
                _supervised("shipper", self._ship_and_measure)
            down = self.shipper is not None and self.shipper.down is not None
            if self._stop.wait(self.retry_s if down else self.ship_every_s):
                return

    def _ship_and_measure(self) -> None:
        assert self.shipper is not None
        self.shipper.ship()
        metrics.BACKLOG_RECORDS.set(self.shipper.pending)
        metrics.BACKLOG_BYTES.set(self.shipper.backlog_bytes())
        oldest = self.shipper.oldest
        metrics.OLDEST.set(time.time() - oldest.timestamp() if oldest else 0)

    def _direct_loop(self) -> None:
        while not (self._stop.is_set() and self._direct.empty()):
            try:
                payloads = self._direct.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self.sink.write(payloads)
            except (SinkDown, SinkRejected) as exc:
                self._count("dropped", len(payloads))
                log.error("inference log: %d records dropped: local log failing (%s) and the "
                          "database refused them (%s)", len(payloads), self.local_error, exc)
            else:
                self._count("direct", len(payloads))
            finally:
                with self._direct_lock:
                    self._direct_bytes -= sum(map(len, payloads))

    # State ---------------------------------------------------------------------------------

    def state(self) -> str:
        """One line for ``/ready``: what the log is doing now."""
        if self.local_error is not None:
            return f"local log unwritable ({self.local_error}): writing to the database directly"
        shipper = self.shipper
        if shipper is not None and shipper.down is not None and shipper.down_since is not None:
            waited = time.monotonic() - shipper.down_since
            return (f"{shipper.down.replace('_', ' ')} for {waited:.0f} s: {shipper.pending} "
                    "records kept on local disk, shipped when it is back")
        return "ok"


def _supervised(name: str, step: Callable[[], object]) -> object:
    """``step()``'s result; None after a bug, which must not end the thread: logged, counted."""
    try:
        return step()
    except Exception:  # a bug must not end the thread: log, count, go on
        log.exception("inference log: %s failed; carrying on", name)
        metrics.ERRORS.labels("shipper" if name != "sync" else "local_write").inc()
        return None
