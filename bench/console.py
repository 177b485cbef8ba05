"""Console benchmark: do the console's heavy pages answer in under 1 s with 150 labels and
1 million logged inferences?

In a fresh PostgreSQL schema (``BENCH_DATABASE_URL``, database ``test``), as ``bench/serving.py``
starts them: an embedder, a trainer that trains model ``intents`` on the 150 CLINC150 intents
(20 phrases each: a real training report, real training label counts for drift), a classifier
and a gateway (uvicorn, one process). v2 is registered as a copy of v1 (same head and report)
and takes 10% of the last 10 days as a canary. Then 1,000,000 inferences over the last 30 days
go straight into the partitioned ``inferences`` table (``INSERT ... SELECT ... FROM
generate_series``; CLINC150 labels, drifting over the last 5 days; 1% with feedback), and the
rollups are rebuilt with ``rollups.backfill`` (what the log shipper keeps up as rows ship).

Each route of :data:`ROUTES` (what the console's pages call) is then timed through the
gateway with an admin key: one first call, then ``--calls`` more. Prints a table, then one JSON
line last: per route ``first_ms``, ``p50_ms``, ``max_ms``, and ``all_under_1s`` (every call of
every route, the first ones included; the review queue's embedding of never-predicted texts,
``cold_ms``, is reported apart: see :data:`EMBEDS`).

    flock /tmp/bench.lock .venv/bin/python bench/console.py [--rows 1000000] [--calls 20]

Service logs are kept in a temporary folder (its path is printed on failure).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import Engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.inference_log import backfill, machine, say
from bench.serving import fresh_schema, stack_env, start, train_head
from services.gateway.auth import KeyStore
from shared.db import partitions, session_factory
from shared.registry import Registry

PORTS = {"gateway": 18300, "embedder": 18301, "classifier": 18302, "trainer": 18303}
DAYS = 30
# The routes the console's heavy pages call: a name, and the path given the window's bounds
# (``{d30}``, ``{d7}``, ``{d1}``: 30, 7 and 1 day(s) before ``{now}``, URL-encoded ISO times).
ROUTES: list[tuple[str, str]] = [
    ("models", "/v1/models"),
    ("version report", "/v1/models/intents/versions/1/report"),
    ("report 30 days", "/v1/reports/models/intents?from={d30}&to={now}"),
    ("series 30 days", "/v1/reports/models/intents/series?from={d30}&to={now}"),
    ("report 7 days", "/v1/reports/models/intents?from={d7}&to={now}"),
    ("series 7 days", "/v1/reports/models/intents/series?from={d7}&to={now}"),
    ("series 24 h", "/v1/reports/models/intents/series?from={d1}&to={now}"),
    ("review 7 days", "/v1/models/intents/review?from={d7}&to={now}"),
]
# Routes whose texts are embedded: the rows here never went through predict, so a first call
# embeds its texts (real traffic has them in the phrase cache already). That call is made first
# and reported as ``cold_ms``, outside the verdict.
EMBEDS = {"review 7 days"}

_GENERATE = text("""
INSERT INTO inferences (id, created_at, request_id, client, model_name, model_version, role,
    head_type, embedder_model, input_text, label, probability, top_k, abstained, cache_hit,
    embed_ms, head_ms, total_ms, feedback_label, feedback_at)
SELECT md5('row' || g), t, md5('request' || g), 'client_' || (g % 7), 'intents', version,
    CASE WHEN version = 2 THEN 'canary' ELSE 'production' END, 'logreg', 'bench',
    left(md5(g::text) || ' ' || md5(t::text), 60),
    CASE WHEN p < 0.45 THEN NULL ELSE lab END, p,
    jsonb_build_object('top', jsonb_build_array(jsonb_build_array(lab, p))),
    p < 0.45, u < 0.7, total * 0.7, total * 0.05, total,
    CASE WHEN u > 0.99 THEN (CASE WHEN u > 0.998 THEN labels[1] ELSE lab END) END,
    CASE WHEN u > 0.99 THEN t + interval '1 hour' END
FROM (SELECT s.*, labels,
             labels[1 + floor(CASE WHEN t > :drift THEN power(random(), 2) ELSE random() END
                              * cardinality(labels))::int] AS lab,
             CASE WHEN t > :canary AND random() < 0.1 THEN 2 ELSE 1 END AS version
      FROM (SELECT g, :start + random() * interval '30 days' AS t, 0.3 + 0.7 * random() AS p,
                   random() AS u, round(exp(1.5 + random() * 3)::numeric, 3)::float8 AS total
            FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g) AS s,
           (SELECT CAST(:labels AS text[]) AS labels) AS l) AS r
""")


def clinc_labels() -> list[str]:
    with open(ROOT / "data/clinc150/train.csv", newline="", encoding="utf-8") as f:
        return sorted({row["label"] for row in csv.DictReader(f)})


def register_canary(engine: Engine) -> None:
    """v2: a copy of the trained v1 (its head, report and label counts)."""
    registry = Registry(session_factory(engine))
    v1 = registry.version("intents", 1)
    registry.register("intents", write=lambda _: v1.artifact_uri, head_type=v1.head_type,
                      embedder_model=v1.embedder_model, embedder_dim=v1.embedder_dim,
                      num_classes=v1.num_classes, train_rows=v1.train_rows,
                      weighted_f1=v1.weighted_f1, params=v1.params, metrics=v1.metrics,
                      data_fingerprint=v1.data_fingerprint, job_id=v1.job_id)


def fill(engine: Engine, rows: int, now: datetime, chunk: int = 250_000) -> float:
    """``rows`` inferences over the ``DAYS`` days before ``now``; the seconds taken."""
    start_at = now - timedelta(days=DAYS)
    with engine.begin() as c:  # daily partitions, as partitions.maintain makes them
        partitions.create_partitions(c, [start_at.date() + timedelta(days=i)
                                         for i in range(DAYS + 2)])
    params = {"start": start_at, "drift": now - timedelta(days=5),
              "canary": now - timedelta(days=10), "labels": clinc_labels()}
    began = time.perf_counter()
    for first in range(1, rows + 1, chunk):
        last = min(first + chunk, rows + 1) - 1
        with engine.begin() as c:
            c.execute(_GENERATE, params | {"first": first, "last": last})
        say(f"  rows {first:,}..{last:,} inserted")
    return time.perf_counter() - began


def time_routes(url: str, key: str, now: datetime, calls: int) -> dict[str, dict[str, Any]]:
    bounds = {f"d{days}": quote((now - timedelta(days=days)).isoformat(), safe="")
              for days in (30, 7, 1)} | {"now": quote(now.isoformat(), safe="")}
    out = {}
    with httpx.Client(base_url=url, timeout=60,
                      headers={"Authorization": f"Bearer {key}"}) as client:
        for name, path in ROUTES:
            cold_ms = None
            if name in EMBEDS:
                began = time.perf_counter()
                client.get(path.format(**bounds)).raise_for_status()
                cold_ms = round((time.perf_counter() - began) * 1000, 1)
            times = []
            for _ in range(calls + 1):
                began = time.perf_counter()
                response = client.get(path.format(**bounds))
                times.append((time.perf_counter() - began) * 1000)
                response.raise_for_status()
            out[name] = {"path": path, "bytes": len(response.content),
                         "first_ms": round(times[0], 1),
                         "p50_ms": round(statistics.median(times[1:]), 1),
                         "max_ms": round(max(times[1:]), 1),
                         "worst_ms": round(max(times), 1)}
            if cold_ms is not None:
                out[name]["cold_ms"] = cold_ms
            say(f"  {name}: {json.dumps(out[name])}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=20, help="timed calls per route, after "
                                                             "a first one")
    parser.add_argument("--per-label", type=int, default=20)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="polyhead-console-"))
    about = machine()
    procs: list[subprocess.Popen[bytes]] = []
    with contextlib.ExitStack() as stack:
        db, engine = stack.enter_context(fresh_schema("console"))
        key = KeyStore(session_factory(engine)).create("bench", ["predict", "admin"])
        env = stack_env(db, work, PORTS["embedder"], PORTS["classifier"]) | {
            "TRAINER_URL": f"http://127.0.0.1:{PORTS['trainer']}"}
        try:
            say("training intents on 150 CLINC150 labels through the trainer")
            procs.append(start("embedder", ["embedder"], env, PORTS["embedder"], work))
            procs.append(start("trainer", ["trainer"], env, PORTS["trainer"], work))
            began = time.perf_counter()
            train_head(f"http://127.0.0.1:{PORTS['trainer']}", args.per_label)
            trained_s = time.perf_counter() - began
            register_canary(engine)
            now = datetime.now(UTC)
            say(f"filling {args.rows:,} inferences over {DAYS} days")
            filled_s = fill(engine, args.rows, now)
            say("rebuilding the rollups")
            rolled_s = backfill(engine)
            procs.append(start("classifier", ["classifier"], env, PORTS["classifier"], work))
            procs.append(start("gateway", ["gateway"], env, PORTS["gateway"], work))
            say("timing the routes")
            routes = time_routes(f"http://127.0.0.1:{PORTS['gateway']}", key, now, args.calls)
            with engine.connect() as c:  # table names: constants of this script
                counts = {table: c.scalar(text(f"SELECT count(*) FROM {table}"))  # nosec B608
                          for table in ("inferences", "inference_rollups",
                                        "inference_rollup_labels", "inference_rollup_latency")}
        except BaseException:
            say(f"service logs: {work}")
            raise
        finally:
            for proc in reversed(procs):
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(30)
    print(f"{'route':<16} {'first ms':>9} {'p50 ms':>8} {'max ms':>8} {'bytes':>9}")
    for name, figures in routes.items():
        print(f"{name:<16} {figures['first_ms']:>9} {figures['p50_ms']:>8} "
              f"{figures['max_ms']:>8} {figures['bytes']:>9}")
    print(json.dumps({
        "routes": {name: {k: f[k] for k in ("cold_ms", "first_ms", "p50_ms", "max_ms") if k in f}
                   for name, f in routes.items()},
        "all_under_1s": all(f["worst_ms"] < 1000 for f in routes.values()),
        "rows": counts["inferences"], "rollup_rows": {k: v for k, v in counts.items()
                                                       if k != "inferences"},
        "labels": len(clinc_labels()), "calls": args.calls, "train_s": round(trained_s, 1),
        "fill_s": round(filled_s, 1), "backfill_s": round(rolled_s, 1), "machine": about}))


if __name__ == "__main__":
    main()
