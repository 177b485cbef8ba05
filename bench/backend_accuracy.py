"""What a lossy embedder backend costs: its vectors' cosine to the exact ones, and CLINC150
test accuracy of a head on its vectors vs fp32.

The cosines are taken on the first 1,000 test.csv phrases (each phrase's lossy vector against
its exact one). A logistic-regression head (scikit-learn, fixed settings) is fitted on the
15,000 train.csv phrases embedded by each backend and scored on the 4,500 test.csv phrases of
the same backend. Deterministic (no timing): no CPU lock needed.

    .venv/bin/python bench/backend_accuracy.py --backend onnx-int8   # vs onnx (exact fp32)

The last stdout line is one JSON object: ``cosine_mean`` and ``cosine_worst`` (lossy against
exact, 1,000 phrases), ``head_accuracy`` per backend and ``head_accuracy_delta`` (lossy minus
exact, in accuracy points of 0-1), and ``cpu``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: `services` must import

from bench.machine import cpu_model

DATA_DIR = ROOT / "data" / "clinc150"


def rows(name: str) -> tuple[list[str], list[str]]:
    with (DATA_DIR / name).open(newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    return [r["text"] for r in table], [r["label"] for r in table]


def embed(backend: Any, texts: list[str], batch: int = 128) -> np.ndarray:
    tokens = backend.tokenize(texts)
    return np.concatenate([backend.forward(tokens[i:i + batch])
                           for i in range(0, len(tokens), batch)])


def head_accuracy(backend: Any) -> float:
    """Test accuracy of a logistic-regression head fitted on ``backend``'s train vectors."""
    from sklearn.linear_model import LogisticRegression

    train_x, train_y = rows("train.csv")
    test_x, test_y = rows("test.csv")
    head = LogisticRegression(C=10.0, max_iter=1000)
    head.fit(embed(backend, train_x), train_y)
    return float(head.score(embed(backend, test_x), test_y))


def compare(lossy: str, exact: str = "onnx") -> dict[str, Any]:
    from services.embedder.backends import load_backend
    from shared.settings import EmbedderSettings

    backends = {name: load_backend(EmbedderSettings(backend=name, concurrent_batches=1))
                for name in (exact, lossy)}
    phrases = rows("test.csv")[0][:1000]
    cosines = np.sum(embed(backends[exact], phrases) * embed(backends[lossy], phrases), axis=1)
    accuracy = {name: head_accuracy(backend) for name, backend in backends.items()}
    return {"cosine_mean": round(float(cosines.mean()), 4),
            "cosine_worst": round(float(cosines.min()), 4),
            "head_accuracy": {k: round(v, 4) for k, v in accuracy.items()},
            "head_accuracy_delta": round(accuracy[lossy] - accuracy[exact], 4),
            "head": "sklearn LogisticRegression(C=10, max_iter=1000), CLINC150 train -> test",
            "cpu": cpu_model()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="onnx-int8", help="the lossy backend")
    parser.add_argument("--exact", default="onnx", help="the fp32 backend it is compared to")
    args = parser.parse_args()
    print(json.dumps(compare(args.backend, args.exact)))


if __name__ == "__main__":
    main()
