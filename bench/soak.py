"""Soak: the whole suite under mixed traffic for ten minutes, memory of every service sampled.

Runs ``polyhead up`` as users do, with PostgreSQL and Redis configured (a fresh schema, the
shared Redis), so it also exercises that path end to end. The embedder's in-process LRU is
made small (``--lru``, default 5,000) so the caches are full within the first minutes; after
that, a service whose memory still grows is leaking.

Traffic (closed loop, ``--clients`` threads): 74.5% single predictions, 15% batches of 8,
5% feedback on an earlier answer, 5% model listings, 0.5% reports (an ops dashboard polling;
a report aggregates every row of its window, so its cost grows with the table); phrases ~70%
repeats and ~30% never-seen variants (loadtests/phrases.py).

Prints one row per sample and, last, one JSON line: requests, errors, rps (overall, and in the
first and last minute after warm-up), p50/p99 latency per kind of request, logged rows against
successful predictions, and per service: RSS after warm-up, RSS at the end, growth and the
fitted slope (MB/min) over the post-warm-up samples.

    .venv/bin/python bench/soak.py                    # 600 s, needs PostgreSQL and Redis
    .venv/bin/python bench/soak.py --duration 60      # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import psutil
from sqlalchemy import func, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from loadtests.phrases import PhraseConfig, PhraseGenerator
from shared.db import make_engine
from shared.db.models import Inference

MODEL = "clinc-intents"
SERVICES = ("embedder", "trainer", "classifier", "gateway")


def free_base_port() -> int:
    """A port p with p..p+3 free (polyhead up uses gateway p, embedder p+1, ...)."""
    import socket
    for _ in range(50):
        base = random.randint(20000, 40000)
        try:
            for offset in range(4):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
    raise RuntimeError("no four free ports in a row")


class Client(threading.Thread):
    """One closed-loop user doing the mixed workload; keeps latencies, counts errors."""

    def __init__(self, url: str, key: str, seed: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.key, self.stop_event = url, key, stop
        self.phrases = PhraseGenerator.from_config(PhraseConfig(repeat_ratio=0.7),
                                                   random.Random(seed))
        self.rng = random.Random(seed)
        self.latencies: list[float] = []
        self.kinds: list[str] = []
        self.ends: list[float] = []  # monotonic time each answer came
        self.errors: dict[str, int] = {}
        self.predicted = 0   # texts answered (each must become one inference row)
        self.ids: list[str] = []

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as http:
            while not self.stop_event.is_set():
                self.one(http)

    def one(self, http: httpx.Client) -> None:
        r = self.rng.random()
        start = time.perf_counter()
        try:
            if r < 0.745 or (r < 0.945 and not self.ids):
                kind = "predict"
                response = http.post(f"/v1/models/{MODEL}/predict",
                                     json={"text": self.phrases.next()})
            elif r < 0.895:
                kind = "predict_batch8"
                response = http.post(f"/v1/models/{MODEL}/predict",
                                     json={"texts": self.phrases.batch(8)})
            elif r < 0.945:
                kind = "feedback"
                response = http.post(f"/v1/inferences/{self.rng.choice(self.ids)}/feedback",
                                     json={"label": "balance"})
            elif r < 0.995:
                kind = "models"
                response = http.get("/v1/models")
            else:
                kind = "report"
                response = http.get(f"/v1/reports/models/{MODEL}")
        except httpx.HTTPError as exc:
            self.errors[type(exc).__name__] = self.errors.get(type(exc).__name__, 0) + 1
            return
        self.latencies.append(time.perf_counter() - start)
        self.kinds.append(kind)
        self.ends.append(time.monotonic())
        if response.status_code != 200:
            key = str(response.status_code)
            self.errors[key] = self.errors.get(key, 0) + 1
        elif response.url.path.endswith("/predict"):
            predictions = response.json()["predictions"]
            self.predicted += len(predictions)
            self.ids = (self.ids + [p["inference_id"] for p in predictions])[-200:]


def service_processes(up: psutil.Process) -> dict[str, psutil.Process]:
    found = {}
    for child in up.children(recursive=True):
        cmdline = " ".join(child.cmdline())
        for name in SERVICES:
            if f"services.{name}" in cmdline:
                found[name] = child
    return found


def rates(clients: list[Client], started: float, warm_s: float, wall_s: float
          ) -> dict[str, float]:
    """Requests per second in the first and the last minute after warm-up: equal when
    nothing degrades as the tables and caches fill."""
    ends = np.array([t - started for c in clients for t in c.ends])
    first = ((ends >= warm_s) & (ends < warm_s + 60)).sum() / 60
    last = (ends >= wall_s - 60).sum() / 60
    return {"rps_first_minute_warm": round(float(first), 1),
            "rps_last_minute": round(float(last), 1)}


def by_kind(clients: list[Client]) -> dict[str, dict[str, float]]:
    out = {}
    pairs = [(k, x) for c in clients for k, x in zip(c.kinds, c.latencies, strict=True)]
    for kind in sorted({k for k, _ in pairs}):
        ms = np.array([x for k, x in pairs if k == kind]) * 1000
        out[kind] = {"n": int(ms.size), "p50_ms": round(float(np.percentile(ms, 50)), 1),
                     "p99_ms": round(float(np.percentile(ms, 99)), 1)}
    return out


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    t = np.array([s[0] for s in samples]) / 60
    mb = np.array([s[1] for s in samples])
    return float(np.polyfit(t, mb, 1)[0]) if len(samples) > 2 else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds of traffic")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=0.25, help="share of the run before "
                        "memory counts as warm (caches full)")
    parser.add_argument("--sample-s", type=float, default=10)
    parser.add_argument("--lru", type=int, default=5000, help="embedder LRU entries")
    parser.add_argument("--database-url", default=os.environ.get(
        "TEST_DATABASE_URL", "postgresql://root@127.0.0.1:5432/test"))
    parser.add_argument("--redis-url", default=os.environ.get("TEST_REDIS_URL",
                                                              "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()

    schema = f"soak_{uuid.uuid4().hex[:8]}"
    admin = make_engine(args.database_url)
    with admin.begin() as c:
        c.execute(text(f"CREATE SCHEMA {schema}"))  # a name made here, not input
    db = f"{args.database_url}?options=-csearch_path%3D{schema}"
    data = Path(tempfile.mkdtemp(prefix="polyhead-soak-"))
    port = free_base_port()
    env = os.environ | {"DATABASE_URL": db, "REDIS_URL": args.redis_url,
                        "EMBEDDER_LRU_SIZE": str(args.lru),
                        "EMBEDDER_CACHE_NAMESPACE": f"polyhead-soak:{schema}"}
    up = subprocess.Popen([sys.executable, "-m", "services.cli", "up", "--data-dir", str(data),
                           "--port", str(port), "--demo-per-label", "20"], env=env, cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    gateway = f"http://127.0.0.1:{port}"
    try:
        assert up.stdout is not None
        for line in up.stdout:  # until the banner: everything is up and the head trained
            print(f"  up: {line.rstrip()}", file=sys.stderr)
            if "curl" in line:
                break
        else:
            raise SystemExit(f"polyhead up exited ({up.wait()}) before it was up; see above")
        threading.Thread(target=lambda: [None for _ in up.stdout or []], daemon=True).start()
        key = (data / "api-key").read_text().strip()
        procs = service_processes(psutil.Process(up.pid))
        print(f"services: { {n: p.pid for n, p in procs.items()} }", file=sys.stderr)

        engine = make_engine(db)
        time.sleep(2)  # polyhead up's own check of the demo head reaches the table first
        with engine.connect() as conn:
            logged_before = int(conn.scalar(select(func.count()).select_from(Inference)) or 0)
        stop = threading.Event()
        clients = [Client(gateway, key, seed, stop) for seed in range(args.clients)]
        started = time.monotonic()
        for client in clients:
            client.start()
        memory: dict[str, list[tuple[float, float]]] = {n: [] for n in procs}
        print("t_s " + " ".join(f"{n}_mb" for n in procs) + " requests errors")
        while (elapsed := time.monotonic() - started) < args.duration:
            for name, proc in procs.items():
                memory[name].append((elapsed, proc.memory_info().rss / 2**20))
            requests = sum(len(c.latencies) for c in clients)
            failed = sum(sum(c.errors.values()) for c in clients)
            print(f"{elapsed:5.0f} " + " ".join(f"{memory[n][-1][1]:8.1f}" for n in procs)
                  + f" {requests} {failed}", flush=True)
            time.sleep(args.sample_s)
        stop.set()
        for client in clients:
            client.join(60)
        wall = time.monotonic() - started

        predicted = sum(c.predicted for c in clients)
        logged = 0
        for _ in range(60):  # the gateway flushes every 0.5 s
            with engine.connect() as conn:
                logged = int(conn.scalar(select(func.count()).select_from(Inference)) or 0
                             ) - logged_before
            if logged >= predicted:
                break
            time.sleep(0.5)
        engine.dispose()

        latencies = np.array([x for c in clients for x in c.latencies]) * 1000
        errors: dict[str, int] = {}
        for client in clients:
            for k, v in client.errors.items():
                errors[k] = errors.get(k, 0) + v
        summary: dict[str, object] = {
            "duration_s": round(wall), "clients": args.clients,
            "requests": int(latencies.size), "errors": errors,
            "rps": round(latencies.size / wall, 1),
            "p50_ms": round(float(np.percentile(latencies, 50)), 1),
            "p99_ms": round(float(np.percentile(latencies, 99)), 1),
            **rates(clients, started, args.warmup * args.duration, wall),
            "by_kind": by_kind(clients),
            "predicted_texts": predicted, "logged_rows": logged}
        for name, samples in memory.items():
            warm = [s for s in samples if s[0] >= args.warmup * args.duration]
            summary[name] = {"rss_warm_mb": round(warm[0][1], 1),
                             "rss_end_mb": round(warm[-1][1], 1),
                             "growth_mb": round(warm[-1][1] - warm[0][1], 1),
                             "slope_mb_per_min": round(slope_mb_per_min(warm), 2)}
        print(json.dumps(summary))
        return 0
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
        with admin.begin() as c:
            c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
