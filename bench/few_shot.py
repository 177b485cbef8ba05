"""Few-shot benchmark: test accuracy of heads trained through the real trainer on 5, 10 or
every example a label, on HWU64 and CLINC150, and how well they tell out-of-scope texts apart.

Starts an embedder and a trainer as processes (a fresh PostgreSQL schema, a fresh Redis
namespace), trains one model per setting with the trainer's defaults (``head=auto``: screened,
cross-validated, abstain threshold calibrated), loads each served head from its artifact as
the classifier does, and predicts the test set from the embedder's features rows. Settings:

- ``hwu64_full`` / ``hwu64_10`` / ``hwu64_5``: HWU64's ``train.csv``, ``train_10.csv`` and
  ``train_5.csv`` (the standard few-shot files), scored on ``test.csv`` (1,076 texts);
- ``clinc150_full`` / ``clinc150_10`` / ``clinc150_5``: CLINC150's ``train.csv``, or 10 or 5
  texts of each intent drawn from it (seeded), scored on the in-scope ``test.csv``.

Accuracy is the head's top label against the truth (abstention ignored, as the literature
scores it). Out-of-scope measures, with CLINC150's out-of-scope test texts as positives and the
in-scope test texts as negatives, from the served head's in-scope score: ``oos_auroc``,
``oos_aupr`` and ``oos_fpr95`` (the share of in-scope texts taken for out-of-scope at 95%
out-of-scope recall) of ``clinc150_full`` (no out-of-scope rows in training); the same of the
10-shot head under ``clinc150_10``'s line.

Each setting's line also says what the served head's abstain threshold costs on the test set
(``abstain_cost``: accuracy answering everything minus accuracy with abstentions counted as
errors; ``abstain_rate``) beside the bound the trainer calibrated it to on held-out training
rows (``abstain_bound``, ``TRAINER_MAX_ACCURACY_DROP``).

Prints one JSON line per setting, then a last line with every figure and
``few_shot_train_s`` (the longest training job of a 5- or 10-shot setting).

    .venv/bin/python bench/few_shot.py               # about 10 minutes on 2 vCPU
    .venv/bin/python bench/few_shot.py --only hwu64_5 clinc150_5
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.machine import cpu_model
from bench.serving import fresh_schema, stack_env, start
from bench.train_quality import to_csv
from services.cli.trainer_api import follow
from shared.artifacts import ArtifactStore
from shared.clients.embedder import EmbedderClient
from shared.heads import HEAD_FILES, Head
from shared.settings import EmbedderClientSettings

PORTS = {"embedder": 18301, "trainer": 18303}
SETTINGS = ("hwu64_full", "hwu64_10", "hwu64_5", "clinc150_full", "clinc150_10", "clinc150_5")


def read(path: Path) -> list[tuple[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [(r["text"], r["label"]) for r in csv.DictReader(f)]


def k_shot(rows: list[tuple[str, str]], k: int, seed: int = 0) -> list[tuple[str, str]]:
    by_label: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in rows:
        by_label[row[1]].append(row)
    rng = random.Random(seed)
    return [row for label in sorted(by_label) for row in rng.sample(by_label[label], k)]


def data(setting: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Training and test rows of a setting."""
    if setting.startswith("hwu64"):
        folder, shots = ROOT / "data/hwu64", setting.split("_")[1]
        train = read(folder / ("train.csv" if shots == "full" else f"train_{shots}.csv"))
        return train, read(folder / "test.csv")
    folder, shots = ROOT / "data/clinc150", setting.split("_")[1]
    train = read(folder / "train.csv")
    return (train if shots == "full" else k_shot(train, int(shots))), read(folder / "test.csv")


def train(trainer: httpx.Client, name: str, rows: list[tuple[str, str]],
          work: Path) -> tuple[Head, dict[str, Any], float]:
    began = time.perf_counter()
    job = trainer.post("/v1/jobs", data={"name": name},
                       files={"file": ("train.csv", to_csv(rows))}).json()
    done = follow(trainer, job["id"], quiet=True)
    seconds = time.perf_counter() - began
    if done.status != "succeeded":
        raise SystemExit(f"{name}: the job failed: {done.error}")
    model = trainer.get(f"/v1/models/{name}").json()
    [version] = [v for v in model["versions"] if v["version"] == model["production_version"]]
    head = Head.from_files(ArtifactStore(str(work / "artifacts")).read_version(
        version["artifact_uri"], HEAD_FILES))
    return head, dict(done.report or {}), seconds


def in_scope_scores(head: Head, rows: np.ndarray) -> np.ndarray:
    probs = head.predict_proba(rows)
    return head.in_scope(rows, probs) if head.in_scope_score is not None else probs.max(axis=1)


def oos_measures(head: Head, embedder: EmbedderClient) -> dict[str, float]:
    """AUROC, AUPR and FPR at 95% TPR, out-of-scope texts as the positive class."""
    folder = ROOT / "data/clinc150"
    inside = [t for t, _ in read(folder / "test.csv")]
    outside = [t for t, _ in read(folder / "oos_test.csv")]
    scores = in_scope_scores(head, embedder.features(inside + outside).head_rows)
    truth = np.r_[np.zeros(len(inside)), np.ones(len(outside))]
    oos_score = -scores  # lower in-scope score: more out-of-scope
    cut = np.quantile(oos_score[truth == 1], 0.05)  # 95% of out-of-scope at or above it
    return {"auroc": round(float(roc_auc_score(truth, oos_score)), 4),
            "aupr": round(float(average_precision_score(truth, oos_score)), 4),
            "fpr95": round(float((oos_score[truth == 0] >= cut).mean()), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", choices=SETTINGS, default=list(SETTINGS))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="polyhead-few-shot-"))
    print(f"work folder (service logs): {work}", file=sys.stderr)
    summary: dict[str, Any] = {}
    longest_few_shot = 0.0
    with fresh_schema("fewshot") as (db, _):
        env = stack_env(db, work, PORTS["embedder"], 0)
        procs = [start("embedder", ["embedder"], env, PORTS["embedder"], work),
                 start("trainer", ["trainer"], env, PORTS["trainer"], work)]
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{PORTS['trainer']}",
                              timeout=600) as trainer, EmbedderClient(EmbedderClientSettings(
                                  url=f"http://127.0.0.1:{PORTS['embedder']}",
                                  timeout_s=600)) as embedder:
                for setting in args.only:
                    rows, test = data(setting)
                    head, report, seconds = train(trainer, setting.replace("_", "-"), rows, work)
                    rows_test = embedder.features([t for t, _ in test]).head_rows
                    answers = head.predict_proba(rows_test)
                    index = {label: i for i, label in enumerate(head.labels)}
                    truth = np.array([index.get(label, -1) for _, label in test])
                    right = answers.argmax(axis=1) == truth
                    accuracy = float(right.mean())
                    # What the abstain threshold costs on the test set, against the bound
                    # the trainer calibrated it to on held-out training rows.
                    kept = in_scope_scores(head, rows_test) >= (head.threshold or -np.inf)
                    line: dict[str, Any] = {
                        "setting": setting, "accuracy": round(accuracy, 4),
                        "train_rows": len(rows), "test_rows": len(test),
                        "head_type": report.get("head_type"),
                        "cv_accuracy": report.get("cv", {}).get("accuracy"),
                        "train_s": round(seconds, 1),
                        "abstain_rate": round(float(1 - kept.mean()), 4),
                        "abstain_cost": round(accuracy - float((right & kept).mean()), 4),
                        "abstain_bound": (report.get("threshold") or {}).get(
                            "max_accuracy_drop")}
                    if setting in ("clinc150_full", "clinc150_10"):
                        line["oos"] = oos_measures(head, embedder)
                    print(json.dumps(line), flush=True)
                    summary[setting] = round(accuracy, 4)
                    if setting in ("clinc150_full", "clinc150_10"):
                        summary[setting + "_oos"] = line["oos"]
                    if not setting.endswith("full"):
                        longest_few_shot = max(longest_few_shot, seconds)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(30)
    full_oos = summary.get("clinc150_full_oos", {})
    print(json.dumps(summary | {
        "oos_auroc": full_oos.get("auroc"), "oos_aupr": full_oos.get("aupr"),
        "oos_fpr95": full_oos.get("fpr95"), "few_shot_train_s": round(longest_few_shot, 1),
        "machine": cpu_model()}))


if __name__ == "__main__":
    main()
