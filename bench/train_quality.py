"""Training quality and time on CLINC150, through the running services, as a user would.

Starts an embedder and a trainer (embedded defaults, a fresh temporary database and artifact
folder, so the phrase cache starts cold), then trains over HTTP:

  cold        train.csv, cold phrase cache            -> in-scope test weighted F1, job seconds;
              no out-of-scope rows ("noos"): in-scope accuracy and oos_test recall with the
              default threshold, calibrated on the training data alone
  warm        train.csv again (warm cache)            -> retrain seconds
  imbalanced  train_imbalanced.csv                    -> in-scope test weighted F1
  oos         train.csv + oos_train/oos_val as "oos"  -> in-scope accuracy, oos_test recall

Each trained head is loaded from the artifact store and scored on test.csv / oos_test.csv with
features rows from the same embedder (``/v1/features``, as the classifier serves it):
``accuracy`` and ``weighted_f1`` answer every text (the head's top label),
``in_scope_accuracy`` counts an abstention as an error. Prints one JSON line
per scenario, and last a summary line with those figures, ``oos_recall``, the job and fit
seconds and the head's memory; ``mashes_answered``: which of a few keyboard mashes a head
answers instead of abstaining.

    .venv/bin/python bench/train_quality.py [--only cold,oos]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from sklearn.metrics import accuracy_score, f1_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from services.cli.trainer_api import follow
from shared.artifacts import ArtifactStore
from shared.clients.embedder import EmbedderClient
from shared.heads import HEAD_FILES, Head
from shared.http import NotReady, wait_ready
from shared.settings import EmbedderClientSettings

DATA = ROOT / "data" / "clinc150"


def rows(name: str) -> list[tuple[str, str]]:
    with open(DATA / name, newline="", encoding="utf-8") as f:
        return [(r["text"], r["label"]) for r in csv.DictReader(f)]


def to_csv(data: list[tuple[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["text", "label"])
    writer.writerows(data)
    return out.getvalue().encode()


def start(cmd: list[str], env: dict[str, str], url: str, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            cwd=env["WORKDIR"])
    try:
        wait_ready(url, timeout_s=120, alive=lambda: proc.poll() is None, interval_s=0.5)
    except NotReady as exc:
        raise SystemExit(f"{cmd} exited: see {log}" if exc.exited
                         else f"{url} not ready in 120 s: see {log}") from None
    return proc


def train(trainer: httpx.Client, name: str, data: bytes, **fields: str) -> dict:
    started = time.monotonic()
    response = trainer.post("/v1/jobs", data={"name": name, **fields},
                            files={"file": ("data.csv", data, "text/csv")})
    response.raise_for_status()
    job = follow(trainer, response.json()["id"], quiet=True, poll_s=0.25)
    seconds = time.monotonic() - started
    if job.status != "succeeded":
        raise SystemExit(f"job failed: {job.error}")
    assert job.model is not None
    version = trainer.get(f"/v1/models/{name}/versions/{job.model.version}").json()
    return {"seconds": round(seconds, 1), "version": version, "report": job.report or {}}


# Keyboard mashes a user might type to try a head (the same as bench/head_quality.py's).
MASHES = ("asdfgh qwerty", "zxcvbnm", "qwertyuiop asdf", "jkjkjk", "fghfgh dfgdfg", "lkjhg",
          "aaaaaa", "hjkl hjkl", "sdfsdf", "xcvb nmnm")


def evaluate(head: Head, embedder: EmbedderClient) -> dict:
    test, oos = rows("test.csv"), rows("oos_test.csv")
    x = embedder.features([t for t, _ in test]).head_rows
    predictions = head.predict(x)
    truth = [label for _, label in test]
    top = [head.labels[i] for i in head.predict_proba(x).argmax(axis=1)]
    predicted = [p.label if p.label is not None else "__abstain__" for p in predictions]
    out = {"accuracy": round(accuracy_score(truth, top), 4),
           "weighted_f1": round(f1_score(truth, top, average="weighted",
                                         labels=sorted(set(truth)), zero_division=0), 4),
           "in_scope_accuracy": round(accuracy_score(truth, predicted), 4),
           "abstain_rate": round(float(np.mean([p.abstained for p in predictions])), 4)}
    if head.threshold is not None:
        oos_pred = head.predict(embedder.features([t for t, _ in oos]).head_rows)
        out["oos_recall"] = round(float(np.mean([p.abstained for p in oos_pred])), 4)
        mashes = head.predict(embedder.features(list(MASHES)).head_rows)
        out["mashes_answered"] = {t: p.label for t, p in zip(MASHES, mashes, strict=True)
                                  if not p.abstained}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="cold,warm,imbalanced,oos")
    args = parser.parse_args()
    scenarios = args.only.split(",")
    work = Path(tempfile.mkdtemp(prefix="polyhead-bench-"))
    env = os.environ | {"HF_HUB_OFFLINE": "1", "LOG_JSON": "false", "WORKDIR": str(work),
                        "PYTHONPATH": str(ROOT), "DATABASE_URL": f"sqlite:///{work}/db.sqlite",
                        "ARTIFACT_STORE": str(work / "artifacts"), "REDIS_URL": "",
                        "EMBEDDER_URL": "http://127.0.0.1:18001"}
    env.pop("REDIS_URL")
    python = sys.executable
    procs = [start([python, "-m", "services.embedder", "--port", "18001"], env,
                   "http://127.0.0.1:18001", work / "embedder.log")]
    procs.append(start([python, "-m", "services.trainer", "--port", "18002"], env,
                       "http://127.0.0.1:18002", work / "trainer.log"))
    results: dict[str, dict] = {}
    try:
        with httpx.Client(base_url="http://127.0.0.1:18002", timeout=300) as trainer, \
                EmbedderClient(EmbedderClientSettings(url="http://127.0.0.1:18001",
                                                      timeout_s=120)) as embedder:
            store = ArtifactStore(str(work / "artifacts"))
            plans = {
                "cold": ("clinc", to_csv(rows("train.csv")), {}),
                "warm": ("clinc", to_csv(rows("train.csv")), {}),
                "imbalanced": ("clinc-imbalanced", to_csv(rows("train_imbalanced.csv")), {}),
                "oos": ("clinc-oos", to_csv(rows("train.csv") + rows("oos_train.csv")
                                            + rows("oos_val.csv")), {"oos_label": "oos"}),
            }
            for scenario in scenarios:
                name, data, fields = plans[scenario]
                trained = train(trainer, name, data, **fields)
                head = Head.from_files(store.read_version(trained["version"]["artifact_uri"],
                                                          HEAD_FILES))
                report = trained["report"]
                results[scenario] = {"scenario": scenario, "train_seconds": trained["seconds"],
                                     "head": report.get("head_type"),
                                     "features": head.features,
                                     "class_weight": report.get("class_weight", {}).get("chosen"),
                                     "cv_weighted_f1": report.get("cv", {}).get("weighted_f1"),
                                     "threshold": head.threshold,
                                     "threshold_method": (report.get("threshold") or {}).get(
                                         "method"),
                                     "memory_bytes": report.get("memory_bytes"),
                                     "timings": report.get("timings"),
                                     "screened": {
                                         k: (v["weighted_f1"], v["fit_seconds"])
                                         for k, v in report.get("screened", {}).items()},
                                     **evaluate(head, embedder)}
                print(json.dumps(results[scenario]), flush=True)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)
    main_run = results.get("cold") or next(iter(results.values()))
    summary = {"accuracy": main_run["accuracy"], "weighted_f1": main_run["weighted_f1"],
               "noos_oos_recall": main_run.get("oos_recall"),
               "noos_in_scope_accuracy": main_run["in_scope_accuracy"],
               "mashes_answered": main_run.get("mashes_answered"),
               "train_seconds": main_run["train_seconds"],
               "fit_seconds": (main_run["timings"] or {}).get("fit_s"),
               "memory_bytes": main_run["memory_bytes"],
               "warm_retrain_seconds": results.get("warm", {}).get("train_seconds"),
               "warm_fit_seconds": (results.get("warm", {}).get("timings") or {}).get("fit_s"),
               "imbalanced_weighted_f1": results.get("imbalanced", {}).get("weighted_f1"),
               "oos_recall": results.get("oos", {}).get("oos_recall"),
               "oos_in_scope_accuracy": results.get("oos", {}).get("in_scope_accuracy"),
               "machine": os.uname().nodename, "cpus": os.cpu_count()}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
