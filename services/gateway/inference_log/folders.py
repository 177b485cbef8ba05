"""Who ships which segments: one folder per process under ``GATEWAY_LOG_DIR``.

Each process writes into its own folder and holds an exclusive ``flock`` on its
``owner.lock`` for as long as it lives; the kernel drops the lock when the process dies, even
by SIGKILL. A live process that can take the lock of a folder that is not its own has found
the log of a dead one (another gunicorn worker, the previous run, a pod that crashed) and
ships it; two live processes can never hold the same folder. ``position`` records, durably,
where shipping stopped: the first segment and offset not yet in the database.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from pathlib import Path

from services.gateway.inference_log.wal import SUFFIX, segments

_LOCK, _POSITION = "owner.lock", "position"


class LogFolder:
    def __init__(self, path: Path, lock_fd: int) -> None:
        self.path, self._lock_fd = path, lock_fd
        self._position: tuple[str, int] | None = None  # the last one saved (or not savable)

    @classmethod
    def create(cls, root: Path) -> LogFolder:
        """A new folder for this process, locked."""
        name = f"{socket.gethostname()}-{os.getpid()}-{time.time_ns()}"
        path = root / name
        path.mkdir(parents=True)
        folder = cls.claim(path)
        assert folder is not None, "a folder just made cannot be locked by anyone else"
        return folder

    @classmethod
    def claim(cls, path: Path) -> LogFolder | None:
        """The folder if its owner is gone (we hold its lock now), else None."""
        try:
            fd = os.open(path / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:  # removed meanwhile, or not a log folder
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        if not (path / _LOCK).exists():  # its last shipper removed it just before we locked
            os.close(fd)
            return None
        return cls(path, fd)

    @staticmethod
    def others(root: Path, own: Path) -> list[Path]:
        return sorted(p for p in root.iterdir() if p.is_dir() and p != own)

    def position(self) -> tuple[str, int]:
        """(segment, offset): everything before it is in the database."""
        if self._position is not None:
            return self._position
        try:
            name, offset = (self.path / _POSITION).read_text().split()
            return name, int(offset)
        except (OSError, ValueError):
            first = next(segments(self.path), None)
            return (first.name if first else f"{0:010d}{SUFFIX}"), 0

    def save_position(self, segment: str, offset: int) -> None:
        """Durably where possible; on a full disk only in memory (a record shipped again
        after a crash is stored once: ids are unique)."""
        self._position = (segment, offset)
        temporary = self.path / f"{_POSITION}.tmp"
        try:
            with open(temporary, "w") as f:
                f.write(f"{segment} {offset}\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, self.path / _POSITION)
        except OSError:
            with contextlib.suppress(OSError):
                temporary.unlink()

    def release(self) -> None:
        """Let another process claim this folder (ours is closing with work left in it)."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def remove(self) -> None:
        """Delete the folder, which must hold no segment any more."""
        for name in (_POSITION, _LOCK):
            with contextlib.suppress(FileNotFoundError):
                (self.path / name).unlink()
        self.release()
        with contextlib.suppress(OSError):
            self.path.rmdir()
