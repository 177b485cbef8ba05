"""Rollout benchmark: what a shadow costs when it shares production's embedding.

Starts embedder, trainer, one classifier and one gateway as processes (a fresh PostgreSQL
schema, a fresh Redis namespace), trains two 150-intent heads (v1 production, v2 not), then
sends traffic in eight phases, ABBA ABBA: with v2 shadowing every request (``share`` 1) and
without. Traffic is never-seen CLINC150 variants only (loadtests/phrases.py, ``repeat_ratio``
0), so the embedder's phrase cache misses. The embedder's calls are read from its own
``/metrics``; the rows from the database once the gateway has drained its log.

Prints one JSON line last: shadow_throughput_ratio (gateway throughput with the shadow / without,
same run), embedder_calls_per_request (with the shadow on), shadow_rows and production_rows
(the production rows of the shadow phases: they must be equal), and the CPU the classifier and
the gateway spend per request with and without the shadow (steadier than throughput when
other work shares the machine).

    flock /tmp/bench.lock .venv/bin/python bench/rollout.py [--duration 8] [--clients 16]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.cpu_share import cpu_seconds
from bench.serving import fresh_schema, phase, stack_env, start, training_csv
from loadtests.phrases import PhraseConfig, PhraseGenerator
from services.cli.trainer_api import follow
from services.gateway.auth import KeyStore
from shared.db import session_factory
from shared.db.models import Inference

EMBEDDER, TRAINER, CLASSIFIER, GATEWAY = (f"http://127.0.0.1:{p}"
                                          for p in (18111, 18113, 18112, 18110))


def embedder_calls() -> int:
    """POST /v1/embeddings and /v1/features answered by the embedder so far, any status (its
    /metrics)."""
    metrics = httpx.get(f"{EMBEDDER}/metrics", timeout=10).text
    pattern = (r'polyhead_http_request_duration_seconds_count\{[^}]*method="POST"[^}]*'
               r'route="/v1/(?:embeddings|features)"[^}]*\} (\S+)')
    return int(sum(float(n) for n in re.findall(pattern, metrics)))


def set_shadow(on: bool, key: str) -> None:
    """Set or withdraw the shadow, then wait until the classifier serves it."""
    headers = {"Authorization": f"Bearer {key}"}
    url = f"{GATEWAY}/v1/models/intents/candidate"
    if on:
        httpx.put(url, headers=headers, json={"version": 2, "mode": "shadow"}).raise_for_status()
    else:
        httpx.delete(url, headers=headers).raise_for_status()
    wanted = {"version": 2, "mode": "shadow", "share": 1.0} if on else None
    for _ in range(200):
        served = httpx.get(f"{CLASSIFIER}/v1/heads").json()["data"][0]["candidate"]
        if (served and {k: served[k] for k in ("version", "mode", "share")}) == wanted:
            return
        time.sleep(0.05)
    raise SystemExit(f"the classifier never loaded the shadow ({on=})")


def train(version_promote: str) -> None:
    with httpx.Client(base_url=TRAINER, timeout=300) as trainer:
        job = trainer.post("/v1/jobs", data={"name": "intents", "head": "logreg",
                                             "promote": version_promote},
                           files={"file": ("train.csv", training_csv(20))}).json()
        assert follow(trainer, job["id"], quiet=True).status == "succeeded"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per phase (8 phases)")
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="polyhead-rollout-"))
    schemas = contextlib.ExitStack()
    db, engine = schemas.enter_context(fresh_schema("rollout"))
    key = KeyStore(session_factory(engine)).create("bench", ["predict", "admin"])
    env = stack_env(db, work, embedder_port=18111, classifier_port=18112) | {
        "CLASSIFIER_RELOAD_INTERVAL_S": "0.2"}
    procs = []
    results: dict[str, list[dict[str, float]]] = {"shadow": [], "production": []}
    windows: list[tuple[float, float]] = []
    try:
        procs.append(start("embedder", ["embedder"], env, 18111, work))
        procs.append(start("trainer", ["trainer"], env, 18113, work))
        train("always")
        train("never")
        procs.append(start("classifier", ["classifier"], env, 18112, work))
        procs.append(start("gateway", ["gateway"], env, 18110, work))
        config = PhraseConfig(repeat_ratio=0.0)
        asyncio.run(phase(GATEWAY, key, PhraseGenerator.from_config(config, random.Random(99)),
                          args.clients, 3))  # warm-up, no shadow
        calls = answered = 0
        # ABBA ABBA: a linear drift of the machine's speed cancels out between the two.
        order = ["production", "shadow", "shadow", "production"] * 2
        for i, name in enumerate(order):
            set_shadow(name == "shadow", key)
            phrases = PhraseGenerator.from_config(config, random.Random(i))
            before, begun = embedder_calls(), time.time()
            cpu_before = [cpu_seconds(p.pid) for p in procs[2:4]]
            result = asyncio.run(phase(GATEWAY, key, phrases, args.clients, args.duration))
            for service, proc, used in zip(("classifier", "gateway"), procs[2:4], cpu_before,
                                           strict=True):
                result[f"{service}_cpu_ms_per_request"] = (
                    (cpu_seconds(proc.pid) - used) * 1000 / max(result["ok"], 1))
            if name == "shadow":
                calls += embedder_calls() - before
                answered += int(result["ok"])
                windows.append((begun, time.time()))
            results[name].append(result)
            print(json.dumps({"phase": i, "mode": name}
                             | {k: round(v, 1) for k, v in result.items()}), flush=True)
        procs[3].terminate()  # graceful: the gateway drains its log
        procs[3].wait(60)
        with engine.connect() as c:
            shadow_rows = int(c.scalar(select(func.count()).select_from(Inference)
                                       .where(Inference.role == "shadow")) or 0)
            production_rows = int(c.scalar(select(func.count()).select_from(Inference).where(
                Inference.role == "production",
                Inference.id.in_(select(Inference.shadow_of)
                                 .where(Inference.role == "shadow")))) or 0)
            in_windows = sum(int(c.scalar(select(func.count()).select_from(Inference).where(
                Inference.role == "production",
                Inference.created_at >= datetime.fromtimestamp(begun, UTC),
                Inference.created_at < datetime.fromtimestamp(end, UTC))) or 0)
                for begun, end in windows)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(30)
        schemas.close()

    def rps(name: str) -> float:
        ok = sum(r["ok"] for r in results[name])
        return ok / sum(r["ok"] / r["rps"] for r in results[name] if r["rps"])

    def cpu(name: str, service: str) -> float:
        return round(float(np.mean([r[f"{service}_cpu_ms_per_request"]
                                    for r in results[name]])), 2)

    summary = {"shadow_throughput_ratio": round(rps("shadow") / rps("production"), 3),
               "embedder_calls_per_request": round(calls / max(answered, 1), 3),
               "shadow_rows": shadow_rows, "production_rows": in_windows,
               "production_rows_mirrored": production_rows,
               "gateway_rps_with_shadow": round(rps("shadow"), 1),
               "gateway_rps_without": round(rps("production"), 1),
               "p50_ms_with_shadow": round(float(np.mean(
                   [r["p50_ms"] for r in results["shadow"]])), 1),
               "p50_ms_without": round(float(np.mean(
                   [r["p50_ms"] for r in results["production"]])), 1),
               # Steadier than throughput on a shared machine: each process's own CPU.
               **{f"{service}_cpu_ms_per_request{suffix}": cpu(name, service)
                  for service in ("classifier", "gateway")
                  for name, suffix in (("shadow", "_with_shadow"), ("production", "_without"))},
               "errors": int(sum(r["errors"] for rs in results.values() for r in rs)),
               "clients": args.clients, "phase_seconds": args.duration, "cpus": os.cpu_count()}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
