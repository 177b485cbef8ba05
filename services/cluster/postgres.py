"""A PostgreSQL instance of the cluster's own, on its ``db`` host: made with initdb, run as
the ``postgres`` user (the server refuses root), its data outside the cluster's folder (which
may not be reachable by that user)."""

from __future__ import annotations

import glob
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from services.cluster.network import Host
from services.cluster.processes import Program


def _binary(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is missing (apt-get install postgresql)")
    return found[-1]


class Postgres:
    def __init__(self, host: Host, work: Path) -> None:
        self.host = host
        self.data = Path(tempfile.mkdtemp(prefix="polyhead-cluster-pg-"))
        self.program = Program("postgres", host, [
            _binary("postgres"), "-D", str(self.data), "-c", f"listen_addresses={host.address}",
            "-c", f"unix_socket_directories={self.data}", "-c", "max_connections=300"],
            {}, work / "logs", user="postgres")

    def start(self) -> Postgres:
        if not any(self.data.iterdir()):
            shutil.chown(self.data, "postgres", "postgres")
            subprocess.run(["runuser", "-u", "postgres", "--", _binary("initdb"), "-D",
                            str(self.data), "-A", "trust", "-U", "polyhead", "--no-sync"],
                           check=True, capture_output=True)
            with open(self.data / "pg_hba.conf", "a") as hba:  # the cluster's own hosts
                hba.write("host all all samenet trust\n")
        self.program.start()
        return self

    def wait_ready(self, timeout_s: float = 60) -> None:
        """Until PostgreSQL accepts sessions: it takes TCP connections earlier, while it still
        replays its log after an unclean stop ("not yet accepting connections")."""
        deadline = time.monotonic() + timeout_s
        while True:
            ready = subprocess.run([_binary("pg_isready"), "-q", "-h", self.host.address,
                                    "-p", "5432", "-t", "1"], check=False)
            if ready.returncode == 0:
                return
            if not self.program.alive or time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not start:\n{self.program.tail()}")
            time.sleep(0.1)

    def restart(self) -> None:
        self.stop(remove=False)
        self.start()
        self.wait_ready()

    def stop(self, *, remove: bool = True) -> None:
        """A fast shutdown (SIGINT: clients are disconnected); ``remove`` deletes the data."""
        if self.program.alive:
            self.program.signal(signal.SIGINT)
            self.program.stop(timeout_s=30)
        if remove:
            shutil.rmtree(self.data, ignore_errors=True)
