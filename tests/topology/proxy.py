"""A real nginx in the Ingress's role, configured from deploy/nginx/gateway.conf."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.conftest import ROOT, free_port


class Nginx:
    """nginx on ``127.0.0.1:<port>`` in front of ``gateways`` (``host:port`` each)."""

    def __init__(self, gateways: list[str], workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.prefix = workdir / f"nginx-{self.port}"
        self.config = self.prefix / "nginx.conf"
        self.gateways = gateways
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Nginx:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        assert Path(binary).exists(), "nginx is not installed (scripts/packages installs it)"
        self.prefix.mkdir(parents=True, exist_ok=True)
        self.write_config()
        with open(self.prefix / "stderr.log", "ab") as stderr:
            self._proc = subprocess.Popen([binary, "-p", str(self.prefix), "-c",
                                           str(self.config), "-g", "daemon off;"], stderr=stderr)
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(f"{self.url}/health", timeout=1.0)
                return self
            except httpx.TransportError:
                why = (self.prefix / "stderr.log").read_text()
                assert self._proc.poll() is None, f"nginx exited: {why}"
                assert time.monotonic() < deadline, f"nginx did not start: {why}"
                time.sleep(0.05)

    def write_config(self) -> None:
        servers = "\n        ".join(f"server {g} max_fails=1 fail_timeout=5s;"
                                       for g in self.gateways)
        text = (ROOT / "deploy/nginx/gateway.conf").read_text()
        self.config.write_text(text.replace("@LISTEN@", f"127.0.0.1:{self.port}")
                               .replace("@GATEWAYS@", servers)
                               .replace("@PREFIX@", str(self.prefix)))

    def reload(self, gateways: list[str]) -> None:
        """The upstreams changed (a gateway added or removed): reload without dropping."""
        assert self._proc is not None
        self.gateways = gateways
        self.write_config()
        self._proc.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGQUIT)  # graceful
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
