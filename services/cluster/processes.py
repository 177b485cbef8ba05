"""One program on one host of the cluster, with its own environment and log file."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from services.cluster.network import Host
from shared.http import NotReady, wait_ready


def end(proc: subprocess.Popen[bytes], sig: int, timeout_s: float = 10) -> int:
    """Send ``sig``, wait ``timeout_s`` for the exit, SIGKILL after; the exit code."""
    proc.send_signal(sig)
    try:
        return proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


class Program:
    """``argv`` on ``host``; ``ready_url``'s ``/ready`` (if any) answers 200 once it serves."""

    def __init__(self, name: str, host: Host, argv: list[str], env: dict[str, str], logs: Path,
                 ready_url: str | None = None, user: str | None = None) -> None:
        self.name, self.host, self.argv, self.env = name, host, argv, env
        self.ready_url, self.user = ready_url, user
        self.log = logs / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 180) -> Program:
        argv = ["runuser", "-u", self.user, "--", *self.argv] if self.user else self.argv
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.host.command(argv), env=os.environ | self.env,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        if self.ready_url:
            self.wait_ready(timeout_s)
        return self

    def wait_ready(self, timeout_s: float = 180) -> None:
        assert self.ready_url is not None
        try:
            wait_ready(self.ready_url, timeout_s=timeout_s, alive=lambda: self.alive,
                       interval_s=0.1)
        except NotReady as exc:
            raise RuntimeError(f"{self.name}: {exc}\n{self.tail()}") from None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        """``sig`` to the program and its children (gunicorn's workers): its process group."""
        if self.alive:
            assert self.proc is not None
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout_s: float = 60) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout_s``; the exit code (None if never started)."""
        if self.proc is None:
            return None
        if self.alive:
            os.kill(self.proc.pid, signal.SIGTERM)  # the master: it stops its workers itself
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            code = self.proc.wait()
        self.proc = None
        return code

    def reap(self) -> None:
        """After its host was killed: collect the exit status."""
        if self.proc is not None:
            self.proc.wait(10)
            self.proc = None

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
