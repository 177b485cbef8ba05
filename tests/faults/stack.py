"""The serving path as real processes, and steady concurrent traffic to throw at it.

:class:`Service` runs one polyhead service the way ``polyhead up`` does (``python -m
services.<name>``), so a fault test can SIGKILL, SIGTERM and restart it. :class:`Traffic`
keeps a few clients predicting through the gateway and records every outcome, so a test can
count failures and compare logged rows with successful answers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from shared.http import NotReady, wait_ready
from tests.conftest import free_port


class Service:
    """``python -m services.<name> --port N`` with its own environment and log file."""

    def __init__(self, name: str, env: dict[str, str], workdir: Path) -> None:
        self.name, self.env, self.workdir = name, env, workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"{name}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 120) -> Service:
        env = os.environ | {"LOG_JSON": "false", "POLYHEAD_ENV": "test"} | self.env
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", f"services.{self.name}", "--port", str(self.port)],
                env=env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(self.url, timeout_s=timeout_s, alive=lambda: self.alive, interval_s=0.1)
        except NotReady as exc:
            raise AssertionError(f"{self.name}: {exc}\n{self.tail()}") from None
        return self

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout_s: float = 60) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout_s)
        self.proc = None
        return code

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.wait()

    def stop(self) -> None:
        if self.proc is not None:
            self.signal(signal.SIGTERM)
            try:
                self.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Outcome:
    start: float
    end: float
    status: int | None            # None: no HTTP answer (connection refused, reset...)
    error: str = ""               # the error message, or the transport error's type
    inference_ids: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.end - self.start


class Traffic:
    """``clients`` threads predicting in a loop (one text each, ``pause_s`` apart) until
    stopped. Every outcome is kept; nothing is retried, so every failure shows."""

    def __init__(self, url: str, key: str, texts: list[str], *, model: str = "intents",
                 clients: int = 4, pause_s: float = 0.02, timeout_s: float = 10) -> None:
        self.url, self.key, self.texts, self.model = url, key, texts, model
        self.clients, self.pause_s, self.timeout_s = clients, pause_s, timeout_s
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sent = 0

    def __enter__(self) -> Traffic:
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(self.clients)]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout_s + 5)

    def _next_text(self) -> str:
        with self._lock:
            self._sent += 1
            n = self._sent
        return self.texts[n % len(self.texts)]

    def _run(self, worker: int) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.url, timeout=self.timeout_s, headers=headers) as http:
            while not self._stop.is_set():
                outcome = self._one(http, self._next_text())
                with self._lock:
                    self.outcomes.append(outcome)
                self._stop.wait(self.pause_s)

    def _one(self, http: httpx.Client, text: str) -> Outcome:
        start = time.monotonic()
        try:
            response = http.post(f"/v1/models/{self.model}/predict", json={"text": text})
        except httpx.TransportError as exc:
            return Outcome(start, time.monotonic(), None, type(exc).__name__)
        end = time.monotonic()
        body: Any = response.json() if response.headers.get("content-type", "").startswith(
            "application/json") else {}
        if response.status_code == 200:
            return Outcome(start, end, 200,
                           inference_ids=[p["inference_id"] for p in body["predictions"]])
        return Outcome(start, end, response.status_code, str(body.get("error", {})
                                                               .get("message", response.text)))

    # Views -----------------------------------------------------------------------------------

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)

    def ok(self) -> list[Outcome]:
        return [o for o in self.snapshot() if o.status == 200]

    def failed(self) -> list[Outcome]:
        return [o for o in self.snapshot() if o.status != 200]

    def ids(self) -> set[str]:
        return {i for o in self.ok() for i in o.inference_ids}

    def wait_for(self, count: int, timeout_s: float = 30) -> None:
        """Until ``count`` more answers than now have come back (traffic is flowing)."""
        target = len(self.snapshot()) + count
        deadline = time.monotonic() + timeout_s
        while len(self.snapshot()) < target:
            assert time.monotonic() < deadline, "traffic stalled"
            time.sleep(0.05)


def summary(outcomes: list[Outcome]) -> str:
    """Status counts and the distinct errors, for assertion messages and the bench figures."""
    counts: dict[str, int] = {}
    for o in outcomes:
        key = str(o.status) if o.status else o.error
        counts[key] = counts.get(key, 0) + 1
    errors = sorted({o.error for o in outcomes if o.status != 200})[:5]
    return f"{counts} {errors}"


def figure(name: str, **values: object) -> None:
    """Print a test's measured figures; with ``POLYHEAD_FIGURES=<file>`` also append them there
    as a JSON line (how bench/RESULTS.md gets its fault figures)."""
    import json

    line = json.dumps({"test": name, **values}, default=str)
    print(line)
    if path := os.environ.get("POLYHEAD_FIGURES"):
        with open(path, "a") as f:
            f.write(line + "\n")
