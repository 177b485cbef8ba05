"""The deployed shape under real faults: scripts/cluster's cluster (2 gateways behind nginx, 2
classifiers, 2 embedders, trainer and worker, PostgreSQL, Redis; a network namespace each),
steady traffic through nginx, and each scenario of services/cluster/scenarios.py in turn.

Trains a 6-intent head through the cluster's trainer, then runs the scenarios. Prints one JSON
line last: ``{"scenarios": {NAME: {"sent", "failed", "missing_ids", "recovery_s", "p99_ms"}}}``
(failed: non-2xx other than 429/503 with Retry-After, or no answer; missing_ids: answered
inference ids not in PostgreSQL after recovery; recovery_s: from the fault to the last failed
or slower-than-2-s answer). Needs root.

    .venv/bin/python bench/topology.py [--only host_loss_gateway,rolling_gateways]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.machine import cpu_model
from services.cli.trainer_api import follow
from services.cluster.cluster import Cluster
from services.cluster.scenarios import SCENARIOS, Workload, wait_served
from services.gateway.auth import KeyStore
from shared.db import make_engine, session_factory

CLINC = ROOT / "data" / "clinc150"


def rows(name: str, labels: int, per_label: int) -> list[tuple[str, str]]:
    with open(CLINC / name, newline="", encoding="utf-8") as f:
        every = [(r["text"], r["label"]) for r in csv.DictReader(f)]
    chosen = sorted({label for _, label in every})[:labels]
    return [r for label in chosen for r in [r for r in every if r[1] == label][:per_label]]


def train(cluster: Cluster, model: str) -> None:
    """A small head through the cluster's own trainer and worker."""
    data = io.StringIO()
    csv.writer(data).writerows([("text", "label"), *rows("train.csv", 6, 20)])
    headers = {"Authorization": f"Bearer {cluster.token}"}
    with httpx.Client(base_url=cluster.url("trainer"), timeout=60, headers=headers) as trainer:
        job = trainer.post("/v1/jobs", data={"name": model, "head": "logreg", "cv_folds": "3"},
                           files={"file": ("data.csv", data.getvalue().encode())})
        job.raise_for_status()
        done = follow(trainer, job.json()["id"], quiet=True)
    if done.status != "succeeded":
        raise SystemExit(f"training failed: {done.error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or list(SCENARIOS)
    work = Path(tempfile.mkdtemp(prefix="polyhead-topology-"))
    cluster = Cluster(work, edge_port=18000, extra_env={"GATEWAY_LOG_DRAIN_S": "5"}).start()
    results: dict[str, dict[str, Any]] = {}
    try:
        train(cluster, "intents")
        engine = make_engine(cluster.database_url)
        key = KeyStore(session_factory(engine)).create("bench", ["predict"])
        engine.dispose()
        workload = Workload("intents", [t for t, _ in rows("test.csv", 150, 2)], key)
        wait_served(cluster, workload)
        for name in names:
            results[name] = SCENARIOS[name](cluster, workload)
            print(name, results[name], file=sys.stderr, flush=True)
    finally:
        cluster.stop()
    print(json.dumps({"scenarios": results, "cpu": cpu_model()}))


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("bench/topology.py needs root (network namespaces)")
    main()
