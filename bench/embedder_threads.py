"""Intra-op threads x worker processes, per embedder backend, on this machine's cores.

Each configuration starts ``workers`` processes, each loading the backend with ``threads``
runtime threads (as gunicorn workers with ``EMBEDDER_THREADS`` would), then all embed the same
number of phrases at once, in batches of ``--batch`` random CLINC150 phrases (sorted within the
batch, as the service's batcher does). The figure is the texts/s of all workers together. No
HTTP: this isolates how the runtime shares the cores.

    flock /tmp/bench.lock .venv/bin/python bench/embedder_threads.py [--texts 1500] [--batch 32]

The last stdout line is one JSON object: ``{backend: {"<workers>x<threads>": texts/s}}``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: `services` must import

CONFIGS = ((1, 1), (1, 2), (2, 1))  # (workers, threads each)


def worker(backend_name: str, threads: int, texts: list[str], batch: int,
           ready: Any, start: Any, results: Any) -> None:
    from services.embedder.backends import load_backend
    from shared.settings import EmbedderSettings

    backend = load_backend(EmbedderSettings(backend=backend_name, threads=threads))
    backend.forward(backend.tokenize(texts[:batch]))  # untimed first batch
    ready.wait()
    start.wait()
    began = time.perf_counter()
    for i in range(0, len(texts), batch):
        backend.forward(sorted(backend.tokenize(texts[i:i + batch]), key=lambda t: len(t.ids)))
    results.put((began, time.perf_counter()))


def measure(backend: str, workers: int, threads: int, texts: list[str], batch: int) -> float:
    ctx = mp.get_context("spawn")
    ready, start, results = ctx.Barrier(workers + 1), ctx.Barrier(workers + 1), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(backend, threads, texts, batch, ready, start,
                                              results)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    ready.wait()
    start.wait()
    spans = [results.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
    elapsed = max(end for _, end in spans) - min(began for began, _ in spans)
    return workers * len(texts) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=1500, help="phrases per worker")
    parser.add_argument("--batch", type=int, default=32, help="phrases per forward pass")
    parser.add_argument("--backends", default="torch,onnx,onnx-int8")
    args = parser.parse_args()
    from bench.embedder import load_phrases

    texts = load_phrases()[:args.texts]
    figures: dict[str, Any] = {}
    for backend in args.backends.split(","):
        figures[backend] = {}
        for workers, threads in CONFIGS:
            tps = measure(backend, workers, threads, texts, args.batch)
            figures[backend][f"{workers}x{threads}"] = round(tps, 1)
            print(f"[threads] {backend} {workers} worker(s) x {threads} thread(s): "
                  f"{tps:.1f} texts/s", file=sys.stderr, flush=True)
    print(json.dumps({"texts_per_s": figures, "batch": args.batch, "texts_per_worker":
                      args.texts, "configs": "workers x threads each"}))


if __name__ == "__main__":
    main()
