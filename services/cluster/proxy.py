"""nginx from one of deploy/nginx/'s templates: the Ingress in front of the gateways, or a
Service in front of the embedders. Runs in the machine's own namespace."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx

from services.cluster.processes import end

DEPLOY_NGINX = Path(__file__).resolve().parents[2] / "deploy" / "nginx"


class Nginx:
    """nginx listening on ``listen`` (``address:port``), sending to ``upstreams``."""

    def __init__(self, template: str, listen: str, upstreams: list[str], prefix: Path) -> None:
        self.template, self.listen, self.upstreams = template, listen, upstreams
        self.url = f"http://{listen}"
        self.prefix = prefix
        self.config = prefix / "nginx.conf"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Nginx:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise RuntimeError("nginx is not installed (apt-get install nginx; scripts/packages)")
        self.prefix.mkdir(parents=True, exist_ok=True)
        self._write()
        # Workers as root when the master is (else nginx's default user, nobody, which cannot
        # enter a private prefix: a body larger than its buffers goes to a file there).
        main = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
        with open(self.prefix / "stderr.log", "ab") as stderr:
            self._proc = subprocess.Popen([binary, "-p", str(self.prefix), "-c",
                                           str(self.config), "-g", main], stderr=stderr)
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(f"{self.url}/health", timeout=1.0)
                return self
            except httpx.TransportError:
                why = (self.prefix / "stderr.log").read_text()
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start: {why}") from None
                time.sleep(0.05)

    def set_upstreams(self, upstreams: list[str]) -> None:
        """Send to these from now on: a graceful reload, no connection dropped."""
        self.upstreams = upstreams
        self._write()
        if self._proc is not None:
            self._proc.send_signal(signal.SIGHUP)
            time.sleep(0.3)  # the new workers take over

    def _write(self) -> None:
        servers = "\n        ".join(f"server {u} max_fails=1 fail_timeout=5s;"
                                       for u in self.upstreams)
        lines = (DEPLOY_NGINX / self.template).read_text().splitlines(keepends=True)
        text = "".join(line for line in lines if not line.lstrip().startswith("#"))
        self.config.write_text(text.replace("@LISTEN@", self.listen)
                               .replace("@UPSTREAMS@", servers)
                               .replace("@PREFIX@", str(self.prefix)))

    def stop(self) -> None:
        if self._proc is not None:
            end(self._proc, signal.SIGQUIT)  # nginx's graceful stop
            self._proc = None
