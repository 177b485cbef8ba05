"""The demo head ``polyhead up`` trains on first start: ``clinc-intents``, from CLINC150.

It trains with CLINC150's out-of-scope examples (``oos_train.csv`` and ``oos_val.csv``, label
``oos``), which calibrate the abstain threshold, so nonsense abstains out of the box.

Trained once: not when the registry has it already, and a demo job a stopped run left
unfinished is followed to its end rather than submitted again.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path

import httpx

from services.cli.trainer_api import follow
from shared.internal_auth import env_internal_headers

CLINC = Path(__file__).resolve().parents[2] / "data" / "clinc150"
DEMO_CSV = CLINC / "train.csv"
OOS_CSVS = (CLINC / "oos_train.csv", CLINC / "oos_val.csv")
OOS_LABEL = "oos"
DEMO_MODEL = "clinc-intents"


class DemoError(Exception):
    pass


def _rows(path: Path) -> list[tuple[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return [(r["text"], r["label"]) for r in csv.DictReader(f)]


def demo_csv(per_label: int, labels: int) -> bytes:
    """``per_label`` rows of the first ``labels`` intents, then every out-of-scope row."""
    rows = _rows(DEMO_CSV)
    chosen = set(sorted({label for _, label in rows})[:labels])
    counts: dict[str, int] = {}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["text", "label"])
    for text, label in rows:
        if label in chosen and counts.get(label, 0) < per_label:
            counts[label] = counts.get(label, 0) + 1
            writer.writerow([text, label])
    writer.writerows((text, OOS_LABEL) for path in OOS_CSVS if path.exists()
                     for text, _ in _rows(path))
    return out.getvalue().encode()


def train_demo(trainer_url: str, gateway_url: str, key: str, args: argparse.Namespace) -> None:
    """Train the demo head once: not when it is in the registry already, and an unfinished
    demo job (a run stopped during it) is followed, not submitted again."""

    with httpx.Client(base_url=trainer_url, timeout=60,
                      headers=env_internal_headers()) as trainer:
        models = trainer.get("/v1/models").json()["data"]
        if any(m["name"] == DEMO_MODEL and m["production_version"] for m in models):
            return
        jobs = trainer.get("/v1/jobs", params={"model": DEMO_MODEL}).json()["data"]
        job_id = next((j["id"] for j in jobs if j["status"] in ("queued", "running")), None)
        if job_id is not None:
            print(f"finishing the demo head {DEMO_MODEL!r} (job {job_id}, left unfinished before)",
                  file=sys.stderr)
        elif not DEMO_CSV.exists():
            print(f"polyhead up: {DEMO_CSV} not found; no demo head", file=sys.stderr)
            return
        else:
            print(f"training the demo head {DEMO_MODEL!r} from CLINC150 (first start only)",
                  file=sys.stderr)
            job_id = trainer.post("/v1/jobs", data={"name": DEMO_MODEL, "head": "logreg",
                                                    "oos_label": OOS_LABEL}, files={
                "file": ("clinc150.csv", demo_csv(args.demo_per_label, args.demo_labels))}
            ).json()["id"]
        done = follow(trainer, job_id)
        if done.status != "succeeded":
            raise DemoError(f"demo training failed: {done.error}")
    # The classifier and the gateway pick the new head up within a few seconds. Asked with an
    # explanation: it takes the prediction's path and is never logged, so no user's report
    # counts this check as an inference.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = httpx.post(f"{gateway_url}/v1/models/{DEMO_MODEL}/explain", timeout=10,
                            json={"text": "hello"}, headers={"Authorization": f"Bearer {key}"})
        if answer.status_code == 200:
            return
        time.sleep(0.5)
    raise DemoError("the demo head did not reach the gateway within 60 s")
