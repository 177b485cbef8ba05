"""Serving benchmark: embedder + classifier + gateway with PostgreSQL and Redis, as users run it.

Starts the services as processes (a fresh PostgreSQL schema, a fresh Redis namespace), trains
a 150-intent head through the trainer (20 CLINC150 phrases per intent), then sends realistic
traffic to three arms in the same run: a gateway logging every inference to PostgreSQL, one
with logging disabled (both through the same classifier and embedder), and the same parts
fused into one process (bench/one_process.py). Twelve phases in ABCCBA order, so machine
noise and drift hit every arm alike. Traffic: CLINC150 phrases, ~70% repeats (Zipf over a
pool) and never-seen variants (loadtests/phrases.py), from ``--clients`` concurrent
closed-loop clients. CPU is read from ``/proc`` for every process on an arm's path.

Prints one JSON line last: gateway_rps, p50_ms, p99_ms (logging gateway), logged_rows (must
equal successes), logging_overhead = rps with logging / rps without, cpu_ms_per_request (the
gateway, classifier and embedder together, per answered request) and one_process_ratio (that
over the one-process reference's: the hop tax).

    .venv/bin/python bench/serving.py [--duration 15] [--clients 16]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import Engine, func, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import one_process
from bench.cpu_share import cpu_seconds
from bench.machine import cpu_model
from loadtests.phrases import PhraseConfig, PhraseGenerator
from services.cli.trainer_api import follow
from services.gateway.auth import KeyStore
from shared.db import make_engine, session_factory
from shared.db.migrate import upgrade
from shared.db.models import Inference
from shared.http import NotReady, wait_ready

PG = os.environ.get("BENCH_DATABASE_URL", "postgresql://root@127.0.0.1:5432/test")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def start(name: str, args: list[str], env: dict[str, str], port: int, work: Path,
          workers: int = 0) -> subprocess.Popen[bytes]:
    """``workers`` > 0: under gunicorn with that many uvicorn workers (deploy/gunicorn/)."""
    service = args[0]
    if workers:
        cmd = [str(Path(sys.executable).parent / "gunicorn"), "-c",
               f"deploy/gunicorn/{service}.py"]
        env = env | {f"{service.upper()}_WORKERS": str(workers),
                     f"{service.upper()}_BIND": f"127.0.0.1:{port}"}
    elif service == "one_process":
        cmd = [sys.executable, "bench/one_process.py", "--port", str(port)]
    else:
        cmd = [sys.executable, "-m", f"services.{service}", "--port", str(port)]
    log = (work / f"{name}.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        wait_ready(f"http://127.0.0.1:{port}", timeout_s=120, alive=lambda: proc.poll() is None,
                   interval_s=0.3)
    except NotReady as exc:
        proc.kill()
        raise SystemExit(f"{name} {'exited' if exc.exited else 'not ready'}: "
                         f"see {work / name}.log") from None
    return proc


@contextlib.contextmanager
def fresh_schema(label: str) -> Iterator[tuple[str, Engine]]:
    """A new migrated PostgreSQL schema: its URL (search_path set) and an engine on it; the
    schema is dropped afterwards, whatever happens."""
    schema = f"bench_{label}_{uuid.uuid4().hex[:8]}"  # made here, safe to format into SQL
    admin = make_engine(PG)
    with admin.begin() as c:
        c.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{PG}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    try:
        upgrade(engine)
        yield url, engine
    finally:
        engine.dispose()
        with admin.begin() as c:
            c.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def stack_env(db: str, work: Path, embedder_port: int, classifier_port: int) -> dict[str, str]:
    """The environment of every service in the bench's stack: the database schema of ``db``
    (its name also keys the trainer's queue and the embedder's Redis cache), files in ``work``."""
    schema = db.rsplit("%3D", 1)[1]
    return os.environ | {
        "HF_HUB_OFFLINE": "1", "LOG_JSON": "false",
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
        "DATABASE_URL": db, "ARTIFACT_STORE": str(work / "artifacts"), "REDIS_URL": REDIS,
        "TRAINER_RUN_WORKER": "true", "TRAINER_QUEUE_NAMESPACE": f"bench-{schema}",
        "EMBEDDER_CACHE_NAMESPACE": f"bench:{schema}",
        "EMBEDDER_URL": f"http://127.0.0.1:{embedder_port}",
        "CLASSIFIER_URLS": f"http://127.0.0.1:{classifier_port}",
        "GATEWAY_LOG_DIR": str(work / "inference-log")}


def train_head(trainer_url: str, per_label: int, labels: int | None = None) -> None:
    """Train the bench's head ``intents`` (logistic regression on CLINC150: ``per_label``
    phrases of each intent, or of the first ``labels`` intents) through the trainer."""
    with httpx.Client(base_url=trainer_url, timeout=300) as trainer:
        job = trainer.post("/v1/jobs", data={"name": "intents", "head": "logreg"},
                           files={"file": ("train.csv", training_csv(per_label, labels))}).json()
        job = follow(trainer, job["id"], quiet=True)
        assert job.status == "succeeded", job.error


def training_csv(per_label: int, labels: int | None = None) -> bytes:
    with open(ROOT / "data/clinc150/train.csv", newline="", encoding="utf-8") as f:
        rows = [(r["text"], r["label"]) for r in csv.DictReader(f)]
    if labels is not None:
        kept = set(list(dict.fromkeys(label for _, label in rows))[:labels])
        rows = [(t, label) for t, label in rows if label in kept]
    seen: dict[str, int] = {}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["text", "label"])
    for text_, label in rows:
        if seen.get(label, 0) < per_label:
            seen[label] = seen.get(label, 0) + 1
            writer.writerow([text_, label])
    return out.getvalue().encode()


async def phase(url: str, key: str, phrases: PhraseGenerator, clients: int, duration_s: float
                ) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + duration_s
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers,
                                 limits=httpx.Limits(max_connections=clients)) as http:
        async def client() -> None:
            nonlocal errors
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    response = await http.post("/v1/models/intents/predict",
                                               json={"text": phrases.next()})
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    errors += 1

        begun = time.monotonic()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.monotonic() - begun
    return {"ok": len(latencies), "errors": errors, "rps": len(latencies) / elapsed,
            "p50_ms": float(np.percentile(latencies, 50)) if latencies else 0.0,
            "p99_ms": float(np.percentile(latencies, 99)) if latencies else 0.0}


def model_work(url: str) -> tuple[float, float]:
    """Texts through the model and seconds in its forward passes so far, from the embedder's
    metrics at ``url``."""
    texts, seconds = "polyhead_embedder_batch_size_sum", "polyhead_embedder_forward_seconds_sum"
    totals = dict.fromkeys((texts, seconds), 0.0)
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        name, _, value = line.partition(" ")
        if name in totals:
            totals[name] = float(value)
    return totals[texts], totals[seconds]


ARMS = {"log": "http://127.0.0.1:18100", "nolog": "http://127.0.0.1:18104",
        "one": "http://127.0.0.1:18105"}
# A linear drift of the machine's speed cancels out between the arms.
ORDER = ["nolog", "log", "one", "one", "log", "nolog"] * 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0,
                        help="seconds per phase (12 phases)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--per-label", type=int, default=20)
    parser.add_argument("--workers", type=int, default=0,
                        help="run classifier and gateways under gunicorn with N workers each "
                             "(0: one uvicorn process each)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="polyhead-serving-"))
    schemas = contextlib.ExitStack()
    db, engine = schemas.enter_context(fresh_schema("serving"))
    key = KeyStore(session_factory(engine)).create("bench", ["predict", "admin"])
    env = stack_env(db, work, embedder_port=18101, classifier_port=18102)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        procs["embedder"] = start("embedder", ["embedder"], env, 18101, work)
        procs["trainer"] = start("trainer", ["trainer"], env, 18103, work)
        train_head("http://127.0.0.1:18103", args.per_label)
        procs["classifier"] = start("classifier", ["classifier"], env, 18102, work, args.workers)
        procs["log"] = start("gateway-log", ["gateway"], env, 18100, work, args.workers)
        procs["nolog"] = start("gateway-nolog", ["gateway"],
                               env | {"GATEWAY_LOG_INFERENCES": "false",
                                      "GATEWAY_LOG_DIR": str(work / "inference-log-off")},
                               18104, work, args.workers)
        procs["one"] = start("one-process", ["one_process"],
                             env | {"GATEWAY_LOG_DIR": str(work / "inference-log-one")}, 18105,
                             work)
        config = PhraseConfig(repeat_ratio=0.7)
        # Seeds of their own: a phase whose never-seen phrases a warm-up had already embedded
        # (in the Redis cache the arms share) would find them cached.
        warm = {name: asyncio.run(phase(url, key, PhraseGenerator.from_config(
            config, random.Random(f"warm-{name}")), args.clients, 3))
            for name, url in ARMS.items()}
        # What each arm's requests cost: the processes on its path (the trainer idles).
        paths = {"log": ["log", "classifier", "embedder"],
                 "nolog": ["nolog", "classifier", "embedder"], "one": ["one"]}
        # Where each arm's forward passes run (their metrics).
        models = {"log": "http://127.0.0.1:18101", "nolog": "http://127.0.0.1:18101",
                  "one": ARMS["one"]}
        results: dict[str, list[dict[str, float]]] = {name: [] for name in ARMS}
        for i, name in enumerate(ORDER):
            phrases = PhraseGenerator.from_config(config, random.Random(f"phase-{i}"))
            before = {p: cpu_seconds(procs[p].pid) for p in paths[name]}
            texts_before, forward_before = model_work(models[name])
            result = asyncio.run(phase(ARMS[name], key, phrases, args.clients, args.duration))
            texts_after, forward_after = model_work(models[name])
            result["model_texts_per_request"] = ((texts_after - texts_before)
                                                 / max(result["ok"], 1))
            result["forward_ms_per_request"] = ((forward_after - forward_before) * 1000
                                                / max(result["ok"], 1))
            for p in paths[name]:
                result[f"cpu_ms_{p}"] = ((cpu_seconds(procs[p].pid) - before[p]) * 1000
                                         / max(result["ok"], 1))
            result["cpu_ms_per_request"] = sum(result[f"cpu_ms_{p}"] for p in paths[name])
            results[name].append(result)
            rounded = {k: round(v, 2) for k, v in result.items()}
            print(json.dumps({"phase": i, "arm": name} | rounded), flush=True)
        # Count what the logging gateway answered (warm-up included) against the rows it wrote.
        procs["log"].terminate()  # graceful: drains its buffer
        procs["log"].wait(60)
        with engine.connect() as c:
            logged = int(c.scalar(select(func.count()).select_from(Inference).where(
                Inference.client != one_process.CLIENT)) or 0)
        answered = int(warm["log"]["ok"]) + sum(int(r["ok"]) for r in results["log"])
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(30)
        schemas.close()
    print(json.dumps(summary(results, logged, answered) | {
        "clients": args.clients, "phase_seconds": args.duration,
        "workers": args.workers or "uvicorn", "cpus": os.cpu_count(), "machine": cpu_model()}))


def summary(results: dict[str, list[dict[str, float]]], logged: int, answered: int
            ) -> dict[str, object]:
    """The bench's figures from each arm's phases (throughput over all of an arm's time)."""
    def rps(name: str) -> float:
        return (sum(r["ok"] for r in results[name])
                / sum(r["ok"] / r["rps"] for r in results[name] if r["rps"]))

    def mean(name: str, field: str) -> float:
        return float(np.mean([r[field] for r in results[name]]))

    cpu = mean("log", "cpu_ms_per_request")
    return {"gateway_rps": round(rps("log"), 1),
            "gateway_rps_without_logging": round(rps("nolog"), 1),
            "one_process_rps": round(rps("one"), 1),
            "p50_ms": round(mean("log", "p50_ms"), 1), "p99_ms": round(mean("log", "p99_ms"), 1),
            "errors": int(sum(r["errors"] for rs in results.values() for r in rs)),
            "logged_rows": logged, "successes": answered,
            "logging_overhead": round(rps("log") / rps("nolog"), 3),
            # CPU per request: steadier than throughput on a noisy VM.
            "cpu_ms_per_request": round(cpu, 2),
            "cpu_ms_per_request_by_service": {
                p: round(mean("log", f"cpu_ms_{p}"), 2)
                for p in ("log", "classifier", "embedder")},
            "cpu_ms_per_request_without_logging": round(mean("nolog", "cpu_ms_per_request"), 2),
            "one_process_cpu_ms_per_request": round(mean("one", "cpu_ms_per_request"), 2),
            # The model's share: texts through it and wall time of its forward passes.
            "model_texts_per_request": {a: round(mean(a, "model_texts_per_request"), 3)
                                        for a in ("log", "one")},
            "forward_ms_per_request": {a: round(mean(a, "forward_ms_per_request"), 2)
                                       for a in ("log", "one")},
            "one_process_ratio": round(cpu / mean("one", "cpu_ms_per_request"), 2)}


if __name__ == "__main__":
    main()
