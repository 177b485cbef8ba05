"""Padding-free (packed) batches against padded ones, in-process: texts/s and cosine.

Run from the repository root (hold the CPU to yourself: other work moves the figures)::

    .venv/bin/python bench/packing.py [--backend torch|onnx|onnx-int8] [--texts 1024] [--rounds 3]

Measures one embedder backend (default torch) with no HTTP and no queue, one batch at a time
on all cores:

1. texts/s, padded (``EMBEDDER_PACKING=off``) against packed (``on``, rows of about
   ``EMBEDDER_PACK_TOKENS`` tokens, 128 by default), for batches of 1, 16 and 32 random
   CLINC150 phrases and for length-sorted batches of 128.
   ``packed`` is the service's own path, which pads batches with little padding to save;
   ``packed_forced`` packs every batch, to show why that threshold exists.
2. the row token budget (``EMBEDDER_PACK_TOKENS``) swept on batches of 64 random phrases.
3. the smallest cosine between a text's packed and padded vectors, over every text above.

Each texts/s figure is the best of ``--rounds`` rounds, the figures taken in turn within a
round: on a shared machine the best run is the one least disturbed. ``runs`` has them all.

Progress goes to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: `services` must import

from bench.embedder import load_phrases, texts_per_second
from bench.machine import cpu_model
from services.embedder.backends import Backend, load_backend, packing
from shared.settings import EmbedderSettings

BATCHES = (1, 16, 32)
SORTED_BATCH = 128
BUDGETS = (64, 128, 256, 384, 512)
BUDGET_BATCH = 64
SINGLE_TEXTS = 256  # one text per forward pass is slow: fewer texts for that row
T = TypeVar("T")


def log(message: str) -> None:
    print(f"[packing] {message}", file=sys.stderr, flush=True)


def backend(name: str, packs: Literal["on", "off"], pack_tokens: int | None = None) -> Backend:
    """The service's backend as the settings build it, one batch at a time on all cores."""
    settings = EmbedderSettings(concurrent_batches=1, backend=name, packing=packs)
    if pack_tokens is not None:
        settings = settings.model_copy(update={"pack_tokens": pack_tokens})
    return load_backend(settings)


def tps(model: Backend, texts: list[str], batch: int, sort_all: bool = False) -> float:
    model.forward(model.tokenize(texts[:batch]))  # untimed: this batch size's first pass
    return round(texts_per_second(model, texts, batch, sort_all=sort_all), 1)


def forced(measure: Callable[[], T]) -> T:
    """Run ``measure()`` with packing applied to every batch, whatever its padding."""
    threshold = packing.PACK_ABOVE_PADDING
    packing.PACK_ABOVE_PADDING = -1.0  # the bench's knob: no batch stays padded
    try:
        return measure()
    finally:
        packing.PACK_ABOVE_PADDING = threshold


def min_cosine(packed: Backend, padded: Backend, texts: list[str], batch: int) -> float:
    """Smallest packed-vs-padded cosine over ``texts`` in batches of ``batch`` (all packed)."""
    lowest = 1.0
    for i in range(0, len(texts), batch):
        tokens = packed.tokenize(texts[i:i + batch])
        both = forced(partial(packed.forward, tokens)) * padded.forward(tokens)
        lowest = min(lowest, float(np.sum(both, axis=1).min()))
    return lowest


def measurements(name: str, texts: list[str]) -> dict[str, Callable[[], float]]:
    """Every texts/s figure of backend ``name``, by figure; each call measures once."""
    padded, packed = backend(name, "off"), backend(name, "on")
    runs: dict[str, Callable[[], float]] = {}
    for batch in BATCHES:
        sample = texts[:SINGLE_TEXTS] if batch == 1 else texts
        for path, model in (("padded", padded), ("packed", packed)):
            runs[f"{path}_{batch}"] = partial(tps, model, sample, batch)
    for path, model in (("padded", padded), ("packed", packed)):
        runs[f"{path}_sorted_{SORTED_BATCH}"] = partial(tps, model, texts, SORTED_BATCH, True)
    runs[f"packed_forced_sorted_{SORTED_BATCH}"] = partial(
        forced, partial(tps, packed, texts, SORTED_BATCH, True))
    for budget in BUDGETS:
        runs[f"budget_{budget}_tps"] = partial(tps, backend(name, "on", budget), texts,
                                                  BUDGET_BATCH)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="torch", choices=["torch", "onnx", "onnx-int8"])
    parser.add_argument("--texts", type=int, default=1024, help="phrases per measurement")
    parser.add_argument("--rounds", type=int, default=3,
                        help="each figure is the best of this many rounds, taken in turn")
    args = parser.parse_args()
    texts = load_phrases()[:args.texts]
    result: dict[str, Any] = {"backend": args.backend, "texts": len(texts), "rounds": args.rounds,
                              "cpu_count": os.cpu_count(), "cpu_model": cpu_model(),
                              "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}
    runs = measurements(args.backend, texts)
    seen: dict[str, list[float]] = {name: [] for name in runs}
    for round_ in range(args.rounds):  # in turn, so a busy minute hits every figure alike
        for name, measure in runs.items():
            seen[name].append(measure())
        log(f"round {round_ + 1}: " + ", ".join(f"{n} {v[-1]}" for n, v in seen.items()))
    result |= {name: max(values) for name, values in seen.items()}
    result["runs"] = seen
    padded, packed = backend(args.backend, "off"), backend(args.backend, "on")
    result["min_cosine_packed_vs_padded"] = min_cosine(packed, padded, texts, 32)
    log(f"min cosine {result['min_cosine_packed_vs_padded']:.7f}")
    import torch
    result.update(torch_version=torch.__version__, torch_threads=torch.get_num_threads(),
                  model=packed.info.model_id, dtype=packed.info.dtype,
                  loadavg_at_end=[round(x, 2) for x in os.getloadavg()],
                  date=time.strftime("%Y-%m-%d", time.gmtime()))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
