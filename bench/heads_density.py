"""Heads density: one classifier process serving 1,000 heads of 10 labels.

Trains one real head through the trainer (10 CLINC150 intents, 20 phrases each: what a team's
small classifier is), then registers it as ``--heads`` models (each its own registry entry,
artifact files and loaded copy) in a fresh PostgreSQL schema, and measures one classifier
process (real embedder):

- ``mb_per_head``: the classifier's resident memory (``VmRSS``) with all heads loaded, minus
  with one, over the heads added;
- ``all_served_after_s``: from the last registration until the classifier's ``/v1/heads``
  lists every model;
- ``p99_one_ms`` / ``p99_all_ms``: classify latency (``--clients`` concurrent clients, 4 by
  default: below saturation, so the p99 is the requests' own time, not a queue's; CLINC150
  phrases the classifier has seen, so its features cache answers and the heads are what
  differs) when every request names the first model, and when each names one of all the
  models at random, in ABBA phases.

Prints one JSON line last: heads, p99_one_ms, p99_all_ms, mb_per_head, all_served_after_s.

    .venv/bin/python bench/heads_density.py [--heads 1000] [--phase-s 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.machine import cpu_model
from bench.serving import fresh_schema, stack_env, start, train_head
from shared.artifacts import ArtifactStore
from shared.db import session_factory
from shared.registry import Registry

PORTS = {"embedder": 18301, "classifier": 18302, "trainer": 18303}
LABELS = 10


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def served(url: str) -> set[str]:
    return {h["model"] for h in httpx.get(f"{url}/v1/heads", timeout=30).json()["data"]}


def copy_model(registry: Registry, store: ArtifactStore, files: dict[str, bytes],
               source: dict[str, object], name: str) -> None:
    """``name`` v1 in production: the trained head's files under a model of its own."""
    version = registry.register(name, write=lambda v: store.write_version(name, v, files),
                                **source).version
    registry.promote(name, version)


async def phase(url: str, models: list[str], texts: list[str], clients: int,
                seconds: float, rng: random.Random) -> list[float]:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        async def client() -> None:
            while time.monotonic() < deadline:
                model, text = rng.choice(models), rng.choice(texts)
                began = time.perf_counter()
                response = await http.post(f"/v1/classify/{model}", json={"texts": [text]})
                response.raise_for_status()
                latencies.append((time.perf_counter() - began) * 1000)

        await asyncio.gather(*(client() for _ in range(clients)))
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--heads", type=int, default=1000)
    parser.add_argument("--phase-s", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="polyhead-heads-"))
    procs = []
    with contextlib.ExitStack() as stack:
        db, engine = stack.enter_context(fresh_schema("heads"))
        env = stack_env(db, work, PORTS["embedder"], PORTS["classifier"])
        try:
            procs.append(start("embedder", ["embedder"], env, PORTS["embedder"], work))
            procs.append(start("trainer", ["trainer"], env, PORTS["trainer"], work))
            train_head(f"http://127.0.0.1:{PORTS['trainer']}", 20, labels=LABELS)
            procs[-1].terminate()
            registry = Registry(session_factory(engine))
            store = ArtifactStore(str(work / "artifacts"))
            trained = registry.version("intents", "production")
            files = store.read_version(trained.artifact_uri)
            source = {k: getattr(trained, k) for k in (
                "head_type", "embedder_model", "embedder_dim", "num_classes", "train_rows",
                "weighted_f1", "params", "metrics", "data_fingerprint")} | {"job_id": None}
            classifier = start("classifier", ["classifier"], env, PORTS["classifier"], work)
            procs.append(classifier)
            url = f"http://127.0.0.1:{PORTS['classifier']}"
            texts = phrases()[:200]
            asyncio.run(phase(url, ["intents"], texts, args.clients, 3, random.Random(0)))
            one_mb = rss_mb(classifier.pid)
            names = [f"heads-{i:04d}" for i in range(1, args.heads)]
            for name in names:
                copy_model(registry, store, files, source, name)
            registered_at = time.monotonic()
            everything = {"intents", *names}
            while not everything <= served(url):
                time.sleep(0.2)
            served_after_s = time.monotonic() - registered_at
            models = sorted(everything)
            asyncio.run(phase(url, models, texts, args.clients, 3, random.Random(1)))  # warm
            all_mb = rss_mb(classifier.pid)
            p99: dict[str, list[float]] = {"one": [], "all": []}
            for i, arm in enumerate(["one", "all", "all", "one"]):
                chosen = ["intents"] if arm == "one" else models
                latencies = asyncio.run(phase(url, chosen, texts, args.clients, args.phase_s,
                                              random.Random(10 + i)))
                p99[arm].append(float(np.percentile(latencies, 99)))
                print(json.dumps({"phase": i, "arm": arm, "requests": len(latencies),
                                  "p99_ms": round(p99[arm][-1], 2)}), flush=True)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(30)
    print(json.dumps({
        "heads": args.heads, "labels_per_head": LABELS, "head_type": source["head_type"],
        "clients": args.clients,
        "p99_one_ms": round(float(np.mean(p99["one"])), 2),
        "p99_all_ms": round(float(np.mean(p99["all"])), 2),
        "rss_one_mb": round(one_mb, 1), "rss_all_mb": round(all_mb, 1),
        "mb_per_head": round((all_mb - one_mb) / max(args.heads - 1, 1), 3),
        "all_served_after_s": round(served_after_s, 2), "machine": cpu_model()}))


def phrases() -> list[str]:
    with open(ROOT / "data/clinc150/test.csv", newline="", encoding="utf-8") as f:
        return [row["text"] for row in csv.DictReader(f)]


if __name__ == "__main__":
    main()
