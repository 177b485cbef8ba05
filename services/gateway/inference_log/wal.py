"""The write-ahead log on local disk: framed records in numbered segment files.

A frame is ``MAGIC | length | crc32 | payload``. A reader stops at a frame that is not all
there yet (a live writer is mid-append) and, in a segment nobody writes any more, skips such a
torn tail; a frame whose checksum fails is skipped alone: the reader looks for the next
``MAGIC``. Records are written with one ``write(2)`` each batch and no fsync: the page cache
survives a killed process; :meth:`SegmentWriter.sync` (every ``GATEWAY_LOG_FSYNC_MS``, from a
background thread) bounds what a machine crash can lose.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"PHL1"
_HEADER = struct.Struct(">4sII")  # magic, payload length, crc32 of the payload
MAX_PAYLOAD = 16 * 1024 * 1024  # a longer "length" is corruption, not a record
SUFFIX = ".wal"


def frame(payload: bytes) -> bytes:
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


@dataclass
class Frames:
    """What one read of a segment found, from ``start`` on."""

    payloads: list[bytes]
    end: int          # offset just after the last whole frame read (or skipped)
    corrupt: int = 0  # frames skipped for a bad header or checksum
    incomplete: bool = False  # stopped at a frame that is not all there (yet)
    more: bool = False  # stopped only because the read was cut: read on from ``end``


def read_frames(path: Path, start: int, max_records: int, end: int | None = None,
                max_bytes: int = 4 * 1024 * 1024) -> Frames:
    """Up to ``max_records`` whole frames from ``start`` and before ``end`` (reading at most
    about ``max_bytes``, more only for a single frame larger than that)."""
    if end is not None:
        max_bytes = min(max_bytes, end - start)
        if max_bytes <= 0:
            return Frames([], start)
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(max_bytes)
        out = _parse(data, start, max_records)
        if out.incomplete and not out.payloads and len(data) == max_bytes:
            f.seek(start)  # one frame larger than the read: read it whole
            whole = _HEADER.size + MAX_PAYLOAD
            data = f.read(whole if end is None else min(whole, end - start))
            out = _parse(data, start, max_records)
    if len(data) == max_bytes and out.end > start and (end is None or start + len(data) < end):
        out.more, out.incomplete = True, False  # our read was cut, not the segment
    return out


def _parse(data: bytes, start: int, max_records: int) -> Frames:
    out, pos, corrupt = Frames([], start), 0, 0
    while len(out.payloads) < max_records:
        if len(data) - pos < _HEADER.size:
            out.incomplete = pos < len(data)
            break
        magic, length, crc = _HEADER.unpack_from(data, pos)
        if magic != MAGIC or length > MAX_PAYLOAD:
            corrupt, pos = corrupt + 1, _resync(data, pos + 1)
            continue
        body = data[pos + _HEADER.size:pos + _HEADER.size + length]
        if len(body) < length:
            out.incomplete = True
            break
        if zlib.crc32(body) != crc:
            corrupt, pos = corrupt + 1, _resync(data, pos + 1)
            continue
        out.payloads.append(body)
        pos += _HEADER.size + length
    out.end, out.corrupt = start + pos, corrupt
    return out


def _resync(data: bytes, pos: int) -> int:
    found = data.find(MAGIC, pos)
    return len(data) if found < 0 else found


class SegmentWriter:
    """Appends frames to ``folder/<serial>.wal``; a new segment once one passes
    ``segment_bytes`` (checked at :meth:`sync`, off the request path)."""

    def __init__(self, folder: Path, segment_bytes: int) -> None:
        self.folder, self.segment_bytes = folder, segment_bytes
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._serial, self._size, self._dirty = 0, 0, False
        existing = [int(p.stem) for p in folder.glob(f"*{SUFFIX}")]
        self._serial = max(existing, default=0)

    def extent(self) -> tuple[str | None, int]:
        """The segment being appended to (no other segment of this writer grows any more) and
        how much of it is written for good: a failed append is cut off again, so a reader
        never goes past this."""
        with self._lock:
            if self._fd is None:
                return None, 0
            return segment_name(self._serial), self._size

    def append(self, payloads: list[bytes]) -> int:
        """Write the frames; raises ``OSError`` (disk full, no permission...) with nothing
        half-written left behind. Returns the bytes written."""
        data = b"".join(frame(p) for p in payloads)
        with self._lock:
            if self._fd is None:
                self._open()
            assert self._fd is not None
            try:
                written = os.write(self._fd, data)
                if written != len(data):
                    raise OSError(f"short write: {written} of {len(data)} bytes")
            except OSError:
                os.ftruncate(self._fd, self._size)  # no torn frame in the middle of a segment
                raise
            self._size += len(data)
            self._dirty = True
        return len(data)

    def sync(self) -> None:
        """fdatasync what was appended since the last call; start a new segment if this one
        is full (the old one is synced and closed outside the lock)."""
        with self._lock:
            fd, dirty, self._dirty = self._fd, self._dirty, False
            full = fd is not None and self._size >= self.segment_bytes
            if full:
                self._fd = None  # the next append opens the next segment
        if fd is None:
            return
        if dirty or full:
            os.fdatasync(fd)
        if full:
            os.close(fd)

    def close(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.fdatasync(fd)
            os.close(fd)

    def _open(self) -> None:
        self._serial += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / segment_name(self._serial)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._size = os.fstat(self._fd).st_size


def segment_name(serial: int) -> str:
    return f"{serial:010d}{SUFFIX}"


def segments(folder: Path) -> Iterator[Path]:
    """A folder's segments, oldest first."""
    return iter(sorted(folder.glob(f"*{SUFFIX}")))


def count_frames(path: Path, start: int) -> int:
    """Whole frames from ``start`` on (for a backlog figure)."""
    count = 0
    while True:
        frames = read_frames(path, start, 1 << 30)
        if not frames.payloads:
            return count
        count, start = count + len(frames.payloads), frames.end
