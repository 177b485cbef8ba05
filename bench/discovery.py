"""Intent discovery benchmark: how well the review queue finds the intents nobody labelled, and
whether labelling its clusters teaches them.

Starts an embedder, a trainer, a classifier and a gateway as processes (a fresh PostgreSQL
schema, a fresh Redis namespace), then, as a team would:

1. trains ``discovery`` on CLINC150's ``train.csv`` without 25% of its intents (38 of 150, a
   seeded choice; ``--dataset hwu64``: HWU64's, 16 of 64) through the trainer, with its
   defaults;
2. predicts every in-scope ``test.csv`` text through the gateway (4,500 texts, 150 intents;
   HWU64 1,076 and 64), and waits until the inference log has shipped all of them;
3. reads the review queue (``GET /v1/models/discovery/review``, the defaults but ``limit``
   2000) and scores its candidate new intents (its clusters and unclustered texts, not the
   texts it sets apart as ``near_known``) on the left-out intents' test texts:

   - ``coverage``: the share of them among the candidates;
   - ``queue_precision``: the share of the candidates that are of a left-out intent;
   - ``coverage_with_near_known`` and ``queue_precision_with_near_known``: the same over every
     text the queue answered, ``near_known`` ones included;
   - ``nmi``, ``ari`` and ``acc`` (Hungarian accuracy) of the queue's clusters against the
     true intents, over the left-out intents' texts in the queue; a text left unclustered
     counts as a cluster of its own;

4. labels each cluster as a reviewer reading it would: all its texts with its most common
   true intent (``POST .../review/labels``; ``new_label`` for a left-out one), retrains from
   feedback (``POST /v1/jobs/feedback``), and predicts the left-out intents' ``val.csv``
   (HWU64: ``valid.csv``) texts (never labelled, never trained on) with the new version
   through the gateway: ``retrained_accuracy`` (the top label, abstentions ignored) and
   ``retrained_abstained`` (the share it abstained on).

Also printed: ``clusters``, ``unclustered``, ``queue_texts``, ``named_as_truth`` (the share
of clusters whose proposed name, from their distinctive words, shares a word with their
majority intent's name). The last line is one JSON object with every figure.

    .venv/bin/python bench/discovery.py              # about 5 minutes on 2 vCPU
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.few_shot import read
from bench.machine import cpu_model
from bench.serving import fresh_schema, stack_env, start
from bench.train_quality import to_csv
from services.cli.trainer_api import follow
from services.gateway.auth import KeyStore
from shared.db import session_factory
from shared.db.models import Inference
from shared.text import clean

PORTS = {"embedder": 18401, "classifier": 18402, "trainer": 18403, "gateway": 18400}
MODEL = "discovery"
BATCH = 64  # texts per prediction request (the gateway's default maximum)


def hungarian_accuracy(truth: list[str], clusters: list[str]) -> float:
    """The share of texts in a cluster matched one-to-one to their intent (the best matching)."""
    intents, t = np.unique(truth, return_inverse=True)
    groups, c = np.unique(clusters, return_inverse=True)
    counts = np.zeros((len(groups), len(intents)))
    np.add.at(counts, (c, t), 1)
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / len(truth))


def queue_scores(review: dict[str, Any], truth: dict[str, str], left_out: set[str]
                 ) -> dict[str, Any]:
    """Coverage, precision and clustering measures of a review answer (see the module)."""
    cluster_of: dict[str, str] = {}
    for i, cluster in enumerate(review["clusters"]):
        for item in cluster["texts"]:
            cluster_of[clean(item["text"])] = f"cluster-{i}"
    for i, item in enumerate(review["unclustered"]):
        cluster_of[clean(item["text"])] = f"alone-{i}"
    left_texts = [t for t, label in truth.items() if label in left_out]
    found = [t for t in left_texts if t in cluster_of]
    queued_left = sum(truth.get(t) in left_out for t in cluster_of)
    intents, clusters = [truth[t] for t in found], [cluster_of[t] for t in found]
    near = {clean(item["text"]) for item in review["near_known"]}
    return {"coverage": round(len(found) / len(left_texts), 4),
            "queue_precision": round(queued_left / max(len(cluster_of), 1), 4),
            "coverage_with_near_known": round(
                sum(t in cluster_of or t in near for t in left_texts) / len(left_texts), 4),
            "queue_precision_with_near_known": round(
                (queued_left + sum(truth.get(t) in left_out for t in near))
                / max(len(cluster_of) + len(near), 1), 4),
            "near_known": len(near),
            "nmi": round(float(normalized_mutual_info_score(intents, clusters)), 4),
            "ari": round(float(adjusted_rand_score(intents, clusters)), 4),
            "acc": round(hungarian_accuracy(intents, clusters), 4),
            "queue_texts": len(cluster_of), "clusters": len(review["clusters"]),
            "unclustered": len(review["unclustered"])}


def label_clusters(gateway: httpx.Client, review: dict[str, Any], truth: dict[str, str],
                   left_out: set[str]) -> tuple[int, float]:
    """Label every cluster with its most common true intent; the clusters labelled and the
    share whose proposed name shares a word with that intent's name."""
    named = 0
    for cluster in review["clusters"]:
        majority, _ = Counter(truth[clean(t["text"])] for t in cluster["texts"]).most_common(1)[0]
        named += bool(set(cluster["proposed_label"].split("_")) & set(majority.split("_")))
        ids = [i for t in cluster["texts"] for i in t["inference_ids"]]
        answer = gateway.post(f"/v1/models/{MODEL}/review/labels", json={
            "inference_ids": ids, "label": majority, "new_label": majority in left_out})
        answer.raise_for_status()
    return len(review["clusters"]), round(named / max(len(review["clusters"]), 1), 4)


def predict(gateway: httpx.Client, texts: list[str], version: int | None = None
            ) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(0, len(texts), BATCH):
        body: dict[str, Any] = {"texts": texts[i:i + BATCH]}
        if version is not None:
            body["version"] = version
        answer = gateway.post(f"/v1/models/{MODEL}/predict", json=body)
        answer.raise_for_status()
        out.extend(answer.json()["predictions"])
    return out


def wait_logged(sessions: Any, count: int, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with sessions() as s:
            if s.scalar(select(func.count()).select_from(Inference)) >= count:
                return
        time.sleep(0.5)
    raise SystemExit(f"the inference log did not ship {count} rows in {timeout_s} s")


def train(trainer: httpx.Client, rows: list[tuple[str, str]] | None) -> tuple[int, float]:
    """A job (from ``rows``, or from feedback when None); the version and seconds it took."""
    began = time.perf_counter()
    if rows is None:
        job = trainer.post("/v1/jobs/feedback", json={"name": MODEL}).json()
    else:
        job = trainer.post("/v1/jobs", data={"name": MODEL},
                           files={"file": ("train.csv", to_csv(rows))}).json()
    done = follow(trainer, job["id"], quiet=True)
    if done.status != "succeeded":
        raise SystemExit(f"the job failed: {done.error}")
    assert done.model is not None
    return done.model.version, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("clinc150", "hwu64"), default="clinc150")
    parser.add_argument("--leave-out", type=float, default=0.25,
                        help="share of the intents left out of training")
    parser.add_argument("--seed", type=int, default=7, help="which intents are left out")
    args = parser.parse_args()
    folder = ROOT / "data" / args.dataset
    training, test = read(folder / "train.csv"), read(folder / "test.csv")
    intents = sorted({label for _, label in training})
    left_out = set(random.Random(args.seed).sample(intents,
                                                    round(args.leave_out * len(intents))))
    truth = {clean(t): label for t, label in test}
    work = Path(tempfile.mkdtemp(prefix="polyhead-discovery-"))
    print(f"work folder (service logs): {work}", file=sys.stderr)
    result: dict[str, Any] = {}
    with fresh_schema("discovery") as (db, engine):
        sessions = session_factory(engine)
        key = KeyStore(sessions).create("bench", ["predict", "admin"])
        env = stack_env(db, work, PORTS["embedder"], PORTS["classifier"])
        procs = [start(name, [name], env, PORTS[name], work) for name in ("embedder", "trainer")]
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{PORTS['trainer']}",
                              timeout=900) as trainer, httpx.Client(
                    base_url=f"http://127.0.0.1:{PORTS['gateway']}", timeout=300,
                    headers={"Authorization": f"Bearer {key}"}) as gateway:
                _, result["train_s"] = train(
                    trainer, [row for row in training if row[1] not in left_out])
                # Started once the model has a production version: they serve it at once.
                procs += [start(name, [name], env, PORTS[name], work)
                          for name in ("classifier", "gateway")]
                predict(gateway, [t for t, _ in test])
                wait_logged(sessions, len(test))
                review = gateway.get(f"/v1/models/{MODEL}/review", params={"limit": 2000})
                review.raise_for_status()
                result |= queue_scores(review.json(), truth, left_out)
                print(json.dumps({"step": "queue"} | result), flush=True)
                result["labelled_clusters"], result["named_as_truth"] = label_clusters(
                    gateway, review.json(), truth, left_out)
                version, result["retrain_s"] = train(trainer, None)
                validation = "val.csv" if args.dataset == "clinc150" else "valid.csv"
                unseen = [(t, label) for t, label in read(folder / validation)
                          if label in left_out]
                answers = predict(gateway, [t for t, _ in unseen], version)
                result["retrained_accuracy"] = round(float(np.mean(
                    [a["top"][0]["label"] == label
                     for a, (_, label) in zip(answers, unseen, strict=True)])), 4)
                result["retrained_abstained"] = round(float(np.mean(
                    [a["label"] is None for a in answers])), 4)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(30)
    result = {k: round(v, 2) if isinstance(v, float) and k.endswith("_s") else v
              for k, v in result.items()}
    print(json.dumps(result | {"dataset": args.dataset, "left_out": len(left_out),
                               "seed": args.seed,
                               "cpus": __import__("os").cpu_count(), "machine": cpu_model()}))


if __name__ == "__main__":
    main()
