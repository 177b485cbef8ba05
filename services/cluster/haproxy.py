"""HAProxy from deploy/haproxy/gateway.cfg, in front of the gateways (the Ingress's role).

Membership changes go through its runtime API, never a reload, so no client connection is
dropped: ``drain`` sends a gateway no new request (what a pod leaving its endpoints gets),
``ready`` takes it back once its health check passes.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

from services.cluster.processes import end
from services.cluster.proxy import DEPLOY_NGINX

TEMPLATE = DEPLOY_NGINX.parent / "haproxy" / "gateway.cfg"


class HAProxy:
    """HAProxy listening on ``listen`` (``address:port``); ``servers``: name -> address:port."""

    def __init__(self, listen: str, servers: dict[str, str], prefix: Path) -> None:
        self.listen, self.servers, self.prefix = listen, servers, prefix
        self.url = f"http://{listen}"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> HAProxy:
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(binary).exists():
            raise RuntimeError("haproxy is not installed (apt-get install haproxy; "
                               "scripts/packages)")
        self.prefix.mkdir(parents=True, exist_ok=True)
        lines = TEMPLATE.read_text().splitlines(keepends=True)
        text = "".join(line for line in lines if not line.lstrip().startswith("#"))
        servers = "\n    ".join(f"server {name} {address} check"
                                for name, address in self.servers.items())
        config = self.prefix / "haproxy.cfg"
        config.write_text(text.replace("@LISTEN@", self.listen).replace("@PREFIX@",
                          str(self.prefix)).replace("@SERVERS@", servers))
        with open(self.prefix / "stderr.log", "ab") as stderr:
            self._proc = subprocess.Popen([binary, "-db", "-f", str(config)], stderr=stderr,
                                          stdout=stderr)
        deadline = time.monotonic() + 30
        while not self._serving():
            why = (self.prefix / "stderr.log").read_text()
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"haproxy did not start: {why}")
            time.sleep(0.1)
        return self

    def _serving(self) -> bool:
        try:
            return httpx.get(f"{self.url}/ready", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    def set_state(self, name: str, state: str) -> None:
        """``ready``, ``drain`` (no new request) or ``maint`` (none at all) for one gateway."""
        self.command(f"set server gateways/{name} state {state}")

    def status(self, name: str) -> str:
        """``UP``, ``DOWN``, ``DRAIN``, ``MAINT``... of one gateway, from ``show stat``."""
        rows = [row.split(",") for row in self.command("show stat").splitlines()]
        header = rows[0][0].lstrip("# ").split(",") + rows[0][1:] if rows else []
        for row in rows[1:]:
            if row[:2] == ["gateways", name]:
                return row[header.index("status")]
        raise KeyError(name)

    def wait_up(self, name: str, timeout_s: float = 15) -> None:
        """Until the gateway takes traffic again (its health check passed)."""
        deadline = time.monotonic() + timeout_s
        while (status := self.status(name)) != "UP":
            if time.monotonic() > deadline:
                raise RuntimeError(f"haproxy: {name} is {status} after {timeout_s:g} s")
            time.sleep(0.1)

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX) as admin:
            admin.connect(str(self.prefix / "admin.sock"))
            admin.sendall(line.encode() + b"\n")
            return admin.makefile().read()

    def stop(self) -> None:
        if self._proc is not None:
            end(self._proc, signal.SIGTERM)
            self._proc = None
