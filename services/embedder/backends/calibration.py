"""``EMBEDDER_BACKEND=auto`` on CPU: the faster exact backend, measured, not assumed.

ONNX Runtime fp32 and torch fp32 give the same vectors (cosine >= 0.9999, one embedding
identity), but which is faster depends on the CPU (from 0.88x to 1.9x between the VMs of
bench/RESULTS.md) and on the batch size: torch pays a fixed cost per forward pass that ONNX
Runtime mostly does not (on one VM, 9.5 ms against 3.8 ms of CPU for a batch of one text, the
same 3.0 ms a text in batches of 16). A service at moderate load runs small batches, a
saturated one large ones, so at the first start on a CPU both are loaded and timed on the same
texts in batches of each of :data:`BATCH_SIZES` (alternating, the best of a few rounds each);
the one with the least time over all of them serves. The choice is kept
beside the ONNX export (``calibration.json``) with what it was measured on: the CPU's model
and vector flags (:mod:`shared.cpu`), the threads of a batch and the runtimes' versions (the
last :data:`KEPT` such conditions). A later start that matches reuses it without loading the
other backend; anything else (another CPU, an upgrade, other threads) measures again.
``/v1/models`` says which and why (``backend_chosen_by``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from services.embedder.backends.base import Backend, concurrency
from services.embedder.backends.model_source import resolve
from services.embedder.backends.onnx_export import cache_dir
from shared.cpu import cpu_model
from shared.settings import EmbedderSettings

log = logging.getLogger(__name__)
RECORD = "calibration.json"
_WORDS = ("where is my parcel", "book a table for two tonight", "what is the balance of my "
          "savings account", "cancel", "how do i reset the password of my online banking",
          "play some jazz in the kitchen", "is it going to rain tomorrow morning in paris",
          "transfer fifty dollars to my checking account and tell me when it arrives")
SAMPLE = [f"{a} {b}" if i % 3 else a for i, (a, b) in
          enumerate((a, b) for a in _WORDS for b in _WORDS)][:48]  # 48 texts, 1-30 words
BATCH_SIZES, ROUNDS = (1, 4, 16), 2
METHOD = "texts/s over batches of 1, 4 and 16"  # a record measured otherwise is measured again
KEPT = 8  # measurements kept: one per set of conditions (threads, CPU, versions) seen


def choose(settings: EmbedderSettings, cpu: str | None = None) -> Backend:
    """The faster of ``onnx`` and ``torch`` on this CPU (``cpu``: its description, read from
    ``/proc/cpuinfo`` unless given), measured now or at an earlier start."""
    from services.embedder.backends.onnx_backend import OnnxBackend
    from services.embedder.backends.torch_backend import TorchBackend

    loaders: dict[str, Callable[[], Backend]] = {
        "onnx": lambda: OnnxBackend.load(settings, int8=False),
        "torch": lambda: TorchBackend.load(settings)}
    path = cache_dir(settings, resolve(settings.model)) / RECORD
    measured_on = _conditions(settings, cpu or cpu_model())
    kept = _read(path)
    record = next((r for r in kept if r.get("measured_on") == measured_on), None)
    if record is not None:
        choice = record["choice"]
        return _with_reason(loaders[choice](), f"measured on {measured_on['cpu']} at "
                            f"{record['measured_at']}: {_speeds(record)} (kept in {path})")
    try:
        backends: dict[str, Backend] = {"onnx": loaders["onnx"]()}
    except Exception as exc:  # an architecture the exporter cannot trace: torch serves it
        log.warning("ONNX backend unavailable; using torch", exc_info=exc)
        return _with_reason(loaders["torch"](), "torch: the ONNX export failed (see the log)")
    backends["torch"] = loaders["torch"]()
    speeds = measure(backends)
    choice = max(speeds, key=lambda name: speeds[name])
    record = {"measured_on": measured_on, "texts_per_s": speeds, "choice": choice,
              "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    _write(path, [r for r in kept if r.get("measured_on") != measured_on][-(KEPT - 1):]
           + [record])
    log.info("backend chosen by measuring", extra={"choice": choice, "texts_per_s": speeds,
                                                   "cpu": measured_on["cpu"]})
    return _with_reason(backends[choice], f"measured at this start on {measured_on['cpu']}: "
                        f"{_speeds(record)}")


def measure(backends: dict[str, Backend]) -> dict[str, float]:
    """Texts per second of each backend on :data:`SAMPLE`, once in batches of each of
    :data:`BATCH_SIZES` (every size weighs the same number of texts): the best of
    :data:`ROUNDS` rounds, the backends taking turns, after a warm-up of one batch of each
    size."""
    batches = {name: [[b.tokenize(SAMPLE[i:i + size]) for i in range(0, len(SAMPLE), size)]
                      for size in BATCH_SIZES]
               for name, b in backends.items()}
    for name, backend in backends.items():
        for by_size in batches[name]:
            backend.features(by_size[0])
    best = dict.fromkeys(backends, float("inf"))
    for _ in range(ROUNDS):
        for name, backend in backends.items():
            began = time.perf_counter()
            for by_size in batches[name]:
                for batch in by_size:
                    backend.features(batch)
            best[name] = min(best[name], time.perf_counter() - began)
    texts = len(SAMPLE) * len(BATCH_SIZES)
    return {name: round(texts / seconds, 1) for name, seconds in best.items()}


def _conditions(settings: EmbedderSettings, cpu: str) -> dict[str, Any]:
    return {"cpu": cpu, "threads": concurrency(settings, "cpu").threads,
            "model": settings.model, "method": METHOD,
            "versions": {p: version(p) for p in ("torch", "onnxruntime", "transformers")}}


def _speeds(record: dict[str, Any]) -> str:
    return ", ".join(f"{name} {speed:g} texts/s"
                     for name, speed in sorted(record["texts_per_s"].items(),
                                               key=lambda item: -item[1]))


def _with_reason(backend: Backend, reason: str) -> Backend:
    backend.info = dataclasses.replace(backend.info, chosen_by=reason)
    return backend


def _read(path: Path) -> list[dict[str, Any]]:
    """The measurements kept (none when there is no file, or an unreadable one)."""
    try:
        kept = json.loads(path.read_text())["measurements"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [r for r in kept if isinstance(r, dict) and r.get("choice") in ("onnx", "torch")]


def _write(path: Path, measurements: list[dict[str, Any]]) -> None:
    """Atomically (gunicorn workers may start together); a folder that cannot be written
    only means measuring again at the next start."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{time.time_ns()}.tmp")
        partial.write_text(json.dumps({"measurements": measurements}, indent=2))
        partial.replace(path)
    except OSError:
        log.warning("could not keep the backend calibration in %s", path, exc_info=True)
