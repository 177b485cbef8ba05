"""Steady traffic through the cluster's edge, every answer kept, and the figures a fault
scenario reports: sent, failed, missing ids, recovery time and p99 latency.

``failed`` is any answer that is not 2xx, other than the documented 429/503 with
``Retry-After`` (a caller told when to come back), and any request with no HTTP answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Answer:
    start: float
    end: float
    status: int | None  # None: no HTTP answer (refused, reset, timed out)
    retry_after: bool = False
    ids: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        if self.status is not None and 200 <= self.status < 300:
            return False
        return not (self.status in (429, 503) and self.retry_after)


class Load:
    """``clients`` threads, each predicting one text at a time through ``url`` until stopped;
    nothing is retried, so every failure shows. ``body`` makes each request's JSON body."""

    def __init__(self, url: str, key: str, path: str, body: Callable[[int], dict[str, object]],
                 *, clients: int = 4, pause_s: float = 0.02, timeout_s: float = 30,
                 source: str | None = None) -> None:
        """``source``: the address the clients' connections leave from (another caller)."""
        self.url, self.key, self.path, self.body, self.source = url, key, path, body, source
        self.clients, self.pause_s, self.timeout_s = clients, pause_s, timeout_s
        self.answers: list[Answer] = []
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._threads: list[threading.Thread] = []
        self._sent = 0

    def __enter__(self) -> Load:
        self._threads = [threading.Thread(target=self._run, daemon=True)
                         for _ in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout_s + 5)

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        transport = httpx.HTTPTransport(local_address=self.source) if self.source else None
        with httpx.Client(base_url=self.url, timeout=self.timeout_s, headers=headers,
                          transport=transport) as http:
            while not self._stop.is_set():
                with self._lock:
                    self._sent += 1
                    n = self._sent
                answer = self._one(http, self.body(n))
                with self._lock:
                    self.answers.append(answer)
                self._stop.wait(self.pause_s)

    def _one(self, http: httpx.Client, body: dict[str, object]) -> Answer:
        start = time.monotonic()
        try:
            response = http.post(self.path, json=body)
        except httpx.TransportError:
            return Answer(start, time.monotonic(), None)
        answer = Answer(start, time.monotonic(), response.status_code,
                        retry_after="retry-after" in response.headers)
        if response.status_code == 200:
            answer.ids = [p["inference_id"] for p in response.json().get("predictions", [])]
        return answer

    def snapshot(self) -> list[Answer]:
        with self._lock:
            return list(self.answers)

    def wait_for(self, count: int, timeout_s: float = 60) -> None:
        """Until ``count`` more answers have come back than now (the traffic flows)."""
        target = len(self.snapshot()) + count
        deadline = time.monotonic() + timeout_s
        while len(self.snapshot()) < target:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the traffic stalled: {len(self.snapshot())} answers")
            time.sleep(0.05)


def figures(answers: list[Answer], fault_at: float, logged: set[str],
            healed_at: float | None = None) -> dict[str, Any]:
    """A scenario's figures from its answers, the moment of its fault and the ids logged.
    ``recovery_s``: from the fault to the last failed or slower-than-2-s answer sent before
    ``healed_at`` (what the fault cost, not the return of what it broke: p99 has both);
    ``failures``: the failed answers' statuses ("none": no HTTP answer), counted."""
    latencies = sorted(a.end - a.start for a in answers)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0
    until = healed_at if healed_at is not None else float("inf")
    bad = [a.end for a in answers
           if (a.failed or a.end - a.start > 2.0) and a.end >= fault_at and a.start < until]
    answered = {i for a in answers for i in a.ids}
    failures: dict[str, int] = {}
    for answer in answers:
        if answer.failed:
            key = str(answer.status or "none")
            failures[key] = failures.get(key, 0) + 1
    return {"sent": len(answers), "failed": sum(a.failed for a in answers),
            "missing_ids": len(answered - logged),
            "recovery_s": round(max(bad) - fault_at, 2) if bad else 0.0,
            "p99_ms": round(p99 * 1000, 1), "failures": failures}
