"""Is a local TCP port free, and if not, which process listens on it.

``polyhead up`` asks before it starts anything, so a second run says which port is taken
instead of half-starting. The owner is found on Linux (``/proc``); elsewhere, or for another
user's process, only the port is named.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

LISTEN = "0A"  # the TCP state column of /proc/net/tcp


def bind_error(host: str, port: int) -> OSError | None:
    """Why a server could not bind ``host:port`` now, or None when it could. SO_REUSEADDR as
    uvicorn sets it, so a port a stopped run left in TIME_WAIT counts as free."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc
    return None


def listener(port: int) -> str | None:
    """``pid 123 (its command line)`` for the process listening on ``port``, if it can be seen."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if os.readlink(fd) not in inodes:
                continue
            command = (fd.parents[1] / "cmdline").read_bytes()
        except OSError:  # the process ended, or is not ours to look at
            continue
        text = command.replace(b"\0", b" ").decode(errors="replace").strip()
        return f"pid {fd.parts[2]} ({text[:160]})"
    return None
