"""Benchmark the embedder: model ceiling in-process vs. what the HTTP service delivers.

Run from the repository root::

    .venv/bin/python bench/embedder.py [--backend auto] [--duration 15] [--port 8090]
                                       [--connections 32]

Phases (each measured with wrk, a light C load generator, because a Python client saturates
a small machine long before the service does):

1. raw        the model in a subprocess, no HTTP: tokenize + forward on length-sorted batches
              of the service's max batch size, on ``--backend`` and on torch fp32 (the
              reference ceiling, same run). The ceiling for this machine. Measured
              before and after phases 2-5 (the mean is used), so drift shows.
2. service    the service under gunicorn with the Redis tier on; 32 connections, each request
              one phrase never sent before, so every text is computed.
3. single     one connection, one never-seen phrase at a time: the latency floor.
4. warm       32 connections replaying phrases sent in phase 2: in-process LRU hits.
5. redis_warm the service restarted with its LRU off, replaying the same phrases: every text
              comes from Redis.

A lossy backend (onnx-int8) also gets ``head_accuracy_delta``: a logistic-regression head's
CLINC150 test accuracy on its vectors minus on exact fp32 ones (bench/backend_accuracy.py).

Progress goes to stderr; the last stdout line is one JSON object (see bench/README.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: `shared` must import

from bench.cpu_share import CpuProbe
from bench.machine import cpu_model
from shared.text import normalize

DATA_DIR = ROOT / "data" / "clinc150"
LUA_SCRIPT = ROOT / "bench" / "wrk" / "phrases.lua"
GUNICORN_CONFIG = ROOT / "deploy" / "gunicorn" / "embedder.py"
OUT_DIR = ROOT / "bench" / "out"  # git-ignored: the service's log of the last run
SEED = 20240601
RAW_TEXTS = 3000        # phrases for the in-process ceiling
WARMUP_PHRASES = 1000   # phrases for the untimed warm-up before the service phase
SINGLE_PHRASES = 4000   # reserved for the one-connection phase; the rest go to the service phase
READY_TIMEOUT_S = 180.0

# Metric series compared before/after each phase: (name, labels).
TEXT_SOURCES = ("computed", "lru", "redis")


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- phrases -------------------------------------------------------------------------


def load_phrases() -> list[str]:
    """Distinct CLINC150 phrases (distinct as the service's cache keys them), shuffled.

    Shuffled with a fixed seed so every slice has the same length mix, and runs compare.
    """
    seen: dict[str, str] = {}
    for path in sorted(DATA_DIR.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                text = row["text"]
                key = normalize(text, lowercase=True)  # the model is uncased: so is the cache
                if key and key not in seen:
                    seen[key] = text
    phrases = list(seen.values())
    random.Random(SEED).shuffle(phrases)
    return phrases


def write_bodies(path: Path, phrases: list[str]) -> Path:
    """One JSON request body per line, for the wrk script (JSON escapes any newline)."""
    with path.open("w", encoding="utf-8") as handle:
        for phrase in phrases:
            handle.write(json.dumps({"input": phrase}) + "\n")
    return path


# --- phase 1: the in-process ceiling (runs in its own process) -----------------------------


def texts_per_second(backend: Any, texts: list[str], batch_size: int, sort_all: bool,
                     workers: int = 1) -> float:
    """Tokenize + forward ``texts`` in batches, as the service's batcher does; texts/s.

    ``sort_all``: sort every text by token count first (least padding, the ideal); otherwise
    batches are taken in the given order and sorted only within themselves. ``workers``
    threads take the batches in turn and run them at once, as the engine's workers do.
    """
    start = time.perf_counter()
    if sort_all:
        tokens = sorted(backend.tokenize(texts), key=lambda t: len(t.ids))
        batches = [tokens[i:i + batch_size] for i in range(0, len(tokens), batch_size)]
    else:
        batches = [texts[i:i + batch_size] for i in range(0, len(texts), batch_size)]
    todo = iter(batches)  # next() on a list iterator is atomic under the GIL

    def work() -> None:
        for batch in todo:
            if not sort_all:
                batch = sorted(backend.tokenize(batch), key=lambda t: len(t.ids))
            backend.forward(batch)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(texts) / (time.perf_counter() - start)


def measure_raw(n_texts: int, connections: int, backend_name: str) -> dict[str, Any]:
    """The model alone, no HTTP and no queue (run in its own process by the bench).

    The model runs as the service runs it (``EMBEDDER_CONCURRENT_BATCHES`` x
    ``EMBEDDER_THREADS``, zeros filled in from the cores: ``backends.concurrency``), on two
    kinds of batches: length-sorted batches of the service's max batch size (the ceiling), and
    batches of random phrases, each worker's share of ``connections`` one-phrase clients: the
    most the batcher can gather. Torch fp32 is measured in the same run, the same way, as the
    reference ceiling (``raw_tps_torch``).
    """
    import torch

    from services.embedder.backends import concurrency, load_backend
    from shared.settings import EmbedderSettings

    settings = EmbedderSettings(backend=backend_name)
    backend = load_backend(settings)  # the service's own path; warms up
    split = concurrency(settings, backend.info.device)
    packed, padded = (load_backend(settings.model_copy(update={  # torch packs on CPU
        "backend": "torch", "packing": packing, "threads": split.threads,
        "concurrent_batches": split.batches})) for packing in ("auto", "off"))
    texts = load_phrases()[:n_texts]
    batch_size = settings.max_batch_size
    small_batch = -(-connections // split.batches)
    for model in (backend, packed, padded):  # untimed: first full-size batch
        model.forward(model.tokenize(texts[:batch_size]))

    def rate(model: Any, size: int, sort_all: bool, some: list[str] = texts) -> float:
        return texts_per_second(model, some, size, sort_all, workers=split.batches)

    # Torch's ceiling is the best of its two paths on length-sorted batches: with almost no
    # padding left to save, plain padded batches are the classic upper bound.
    sorted_tps = {"packed": rate(packed, batch_size, True),
                  "padded": rate(padded, batch_size, True)}
    torch_tps = max(sorted_tps.values())
    raw_tps = torch_tps if backend.info.backend == "torch" else rate(backend, batch_size, True)
    small_tps = rate(backend, small_batch, False, texts[:max(small_batch * 32, 512)])
    return {"raw_tps": raw_tps, "raw_tps_torch": torch_tps, "raw_texts": len(texts),
            "backend": backend.info.backend, "identity": backend.info.identity,
            "raw_sorted_padded_tps": round(sorted_tps["padded"], 1),
            "raw_sorted_packed_tps": round(sorted_tps["packed"], 1),
            "raw_batch_size": batch_size,
            "raw_small_batch_tps": small_tps, "raw_small_batch_size": small_batch,
            "concurrent_batches": split.batches, "threads_per_batch": split.threads,
            "torch_version": torch.__version__, "raw_torch_threads": torch.get_num_threads(),
            "device": backend.info.device, "dtype": backend.info.dtype,
            "model": backend.info.model_id, "max_batch_size": batch_size,
            "max_wait_ms": settings.max_wait_ms, "packing": settings.packing,
            "pack_tokens": settings.pack_tokens}


def run_raw_subprocess(n_texts: int, connections: int, backend: str) -> dict[str, Any]:
    """Phase 1 in a child process, so the bench process never loads torch or holds its threads."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--raw-only", "--backend", backend,
           "--raw-texts", str(n_texts), "--connections", str(connections)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"raw model measurement failed (exit {done.returncode}); see above")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the service process ---------------------------------------------------------------


def pick_port(preferred: int) -> int:
    """``preferred`` if nothing listens there, else any free port the kernel gives."""
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                log(f"port {port} is busy; picking a free one")
                continue
            return int(sock.getsockname()[1])
    raise SystemExit("no free TCP port on 127.0.0.1")


class EmbedderProcess:
    """The embedder under gunicorn, as deployed, in its own process group (killed as a whole)."""

    def __init__(self, port: int, env: dict[str, str], log_path: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self._env = {**os.environ, **env, "EMBEDDER_BIND": f"127.0.0.1:{port}"}
        self._log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        with self._log_path.open("ab") as log_file:
            self._proc = subprocess.Popen(
                [str(gunicorn), "-c", str(GUNICORN_CONFIG)], cwd=ROOT, env=self._env,
                stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready()

    def worker_pids(self) -> list[int]:
        """The gunicorn workers (the master's children)."""
        assert self._proc is not None
        pid = self._proc.pid
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]

    def _wait_ready(self) -> None:
        """Poll /ready; on exit or timeout show the service's own output and stop."""
        assert self._proc is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._fail(f"the embedder exited with code {self._proc.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except urllib.error.HTTPError as exc:  # 503: loading, or the load failed
                if "failed" in exc.read().decode(errors="replace"):
                    self._fail("the embedder could not load its model")
            except (urllib.error.URLError, OSError):
                pass  # not listening yet
            time.sleep(0.25)
        self._fail(f"the embedder was not ready after {READY_TIMEOUT_S:.0f} s")

    def _fail(self, reason: str) -> None:
        tail = self._log_path.read_text(errors="replace").splitlines()[-40:]
        sys.stderr.write("---- embedder output (last 40 lines) ----\n" + "\n".join(tail) + "\n")
        self.stop()
        raise SystemExit(reason)

    def stop(self) -> None:
        """SIGTERM the process group (gunicorn shuts down gracefully), SIGKILL if it lingers."""
        if self._proc is None or self._proc.poll() is not None:
            return
        for sig, wait_s in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self._proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self._proc.wait(timeout=wait_s)
                return
            except subprocess.TimeoutExpired:
                log(f"embedder did not stop on {sig.name}")


def service_torch_threads(log_path: Path) -> int | None:
    """Torch threads the service ran with, from its JSON "model loaded" log line."""
    for line in log_path.read_text(errors="replace").splitlines():
        if '"model loaded"' in line:
            try:
                return int(json.loads(line)["threads"])
            except (ValueError, KeyError):
                return None
    return None


# --- metrics -------------------------------------------------------------------------


Sample = tuple[str, tuple[tuple[str, str], ...]]


def scrape(url: str) -> dict[Sample, float]:
    """The service's /metrics as {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url + "/metrics", timeout=10) as answer:
        text = answer.read().decode()
    samples: dict[Sample, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict[Sample, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_idle(url: str, timeout_s: float = 30.0) -> None:
    """Wait until requests wrk left in flight are answered, so they count in their own phase.

    Idle means: nothing queued for the model, and no text answered over the last 0.5 s (a
    request can be in its cache lookup, not yet queued).
    """
    deadline = time.monotonic() + timeout_s
    last = -1.0
    while time.monotonic() < deadline:
        samples = scrape(url)
        answered = sum(value(samples, "polyhead_embedder_texts_total", source=src)
                       for src in TEXT_SOURCES)
        if value(samples, "polyhead_embedder_queue_texts") <= 0 and answered == last:
            return
        last = answered
        time.sleep(0.5)
    log("warning: the embedder was still busy 30 s after the phase")


@dataclass
class MetricDelta:
    """What the service itself saw during a phase (counter differences)."""

    texts: dict[str, float]
    batches: float
    mean_batch_size: float
    batch_size_buckets: dict[str, float]
    mean_forward_ms: float
    forward_s: float
    rejected: float
    redis_errors: float

    @classmethod
    def between(cls, before: dict[Sample, float], after: dict[Sample, float]) -> MetricDelta:
        def delta(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        texts = {src: delta("polyhead_embedder_texts_total", source=src) for src in TEXT_SOURCES}
        batches = delta("polyhead_embedder_batch_size_count")
        forward_s = delta("polyhead_embedder_forward_seconds_sum")
        buckets = {dict(labels)["le"]: after[(name, labels)] - before.get((name, labels), 0.0)
                   for (name, labels) in after if name == "polyhead_embedder_batch_size_bucket"}
        redis_errors = sum(after[k] - before.get(k, 0.0) for k in after
                           if k[0] == "polyhead_embedder_redis_errors_total")
        return cls(texts=texts, batches=batches,
                   mean_batch_size=delta("polyhead_embedder_batch_size_sum") / batches
                   if batches else 0.0,
                   batch_size_buckets=buckets,
                   mean_forward_ms=1000 * forward_s / batches if batches else 0.0,
                   forward_s=forward_s,
                   rejected=delta("polyhead_embedder_rejected_texts_total"),
                   redis_errors=redis_errors)

    def fraction(self, source: str) -> float:
        total = sum(self.texts.values())
        return self.texts[source] / total if total else 0.0


# --- wrk phases ----------------------------------------------------------------------


@dataclass
class PhaseResult:
    name: str
    wrk: dict[str, Any]
    metrics: MetricDelta
    cpu: dict[str, float]  # bench.cpu_share: where the CPU went during the phase
    tps: float = field(init=False)
    p50_ms: float = field(init=False)
    p99_ms: float = field(init=False)
    errors: int = field(init=False)

    def __post_init__(self) -> None:
        seconds = self.wrk["duration_us"] / 1e6
        self.tps = self.wrk["ok"] / seconds if seconds else 0.0
        self.p50_ms = self.wrk["p50_us"] / 1000
        self.p99_ms = self.wrk["p99_us"] / 1000
        self.errors = self.wrk["non2xx"] + self.wrk["socket_errors"]

    def summary(self) -> str:
        return (f"{self.name}: {self.tps:.1f} req/s, p50 {self.p50_ms:.1f} ms, "
                f"p99 {self.p99_ms:.1f} ms, errors {self.errors}, "
                f"mean batch {self.metrics.mean_batch_size:.1f}, "
                f"texts {({k: int(v) for k, v in self.metrics.texts.items()})}")


def run_wrk(url: str, bodies: Path, mode: str, connections: int, threads: int,
            duration_s: int) -> dict[str, Any]:
    """One wrk run with bench/wrk/phrases.lua; returns the script's done() summary."""
    threads = min(threads, connections)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--timeout", "10s",
           "-s", str(LUA_SCRIPT), url + "/v1/embeddings", "--", str(bodies), mode, str(threads)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
            result["connections_per_thread"] = connections // threads
            return result
    raise SystemExit(f"wrk gave no summary (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")


def run_phase(name: str, embedder: EmbedderProcess, bodies: Path, mode: str, connections: int,
              threads: int, duration_s: int) -> PhaseResult:
    """A measured wrk run plus the service-side counters and CPU share for the same span."""
    url = embedder.url
    before = scrape(url)
    with CpuProbe(embedder.worker_pids()) as cpu:
        result = run_wrk(url, bodies, mode, connections, threads, duration_s)
    wait_idle(url)
    phase = PhaseResult(name, result, MetricDelta.between(before, scrape(url)), cpu.share)
    log(phase.summary())
    if result["exhausted"]:
        log(f"warning: {name} ran out of unseen phrases before the end; its throughput is "
            "understated. Use a shorter --duration.")
    return phase


def answered_phrases(phrases: list[str], wrk_result: dict[str, Any]) -> list[str]:
    """Phrases a "once" run surely got answers for (so they are cached), per wrk thread.

    A thread's phrases go out in file order; at most one request per connection is still in
    flight when wrk stops, so the first ``ok - connections`` of each slice were answered.
    Each slice's first phrase is left out: wrk calls request() once before the run to check
    the script, and that phrase is never sent.
    """
    answered: list[str] = []
    margin = wrk_result["connections_per_thread"]
    for thread in wrk_result["threads"]:
        start = thread["first"] + 1
        answered.extend(phrases[start:start + max(0, thread["ok"] - margin - 1)])
    return answered


# --- main ----------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    return {"cpu_count": os.cpu_count(), "cpu_model": cpu_model(),
            "loadavg_at_start": list(os.getloadavg())}


def flush_redis(redis_url: str) -> None:
    """Empty the bench's Redis database so "never seen" holds for the Redis tier too."""
    import redis

    try:
        redis.Redis.from_url(redis_url).flushdb()
    except redis.RedisError as exc:
        raise SystemExit(f"cannot flush Redis at {redis_url}: {exc}") from exc


def redis_keys(redis_url: str) -> int:
    import redis

    return int(redis.Redis.from_url(redis_url).dbsize())


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="auto",
                        choices=["auto", "torch", "onnx", "onnx-int8"],
                        help="EMBEDDER_BACKEND for the service and the raw ceiling")
    parser.add_argument("--duration", type=int, default=15, help="seconds per measured phase")
    parser.add_argument("--port", type=int, default=8090, help="preferred port for the service")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument("--threads", type=int, default=1,
                        help="wrk threads (1 leaves the CPU to the service)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15",
                        help="Redis database for the cache tier; FLUSHED at the start")
    parser.add_argument("--ceiling-only", action="store_true",
                        help="phase 1 only (no service, no wrk): the backend's ceiling against "
                             "torch fp32, and a lossy backend's head accuracy")
    parser.add_argument("--raw-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--raw-texts", type=int, default=RAW_TEXTS, help=argparse.SUPPRESS)
    return parser.parse_args()


def warm_up(url: str, bodies: Path, mode: str, args: argparse.Namespace, seconds: int) -> None:
    """Untimed load (first forward passes, Redis connections), then let it settle.

    The measured phase starts with nothing in flight and Redis in use: after a Redis timeout
    the service leaves Redis alone for a while (``redis_retry_after_s``), and a phase started
    then would measure the service without its Redis tier.
    """
    run_wrk(url, bodies, mode, args.connections, args.threads, seconds)
    wait_idle(url)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/ready", timeout=5) as answer:
                if json.load(answer).get("checks", {}).get("redis") == "ok":
                    return
        except (urllib.error.URLError, OSError, ValueError):
            pass  # not ready (503) or a bad answer: ask again
        time.sleep(0.25)
    log("warning: the embedder still reports Redis unavailable; measuring anyway")


def redis_errors_so_far(url: str) -> float:
    """Redis failures since this service process started (warm-ups included)."""
    return sum(v for (name, _), v in scrape(url).items()
               if name == "polyhead_embedder_redis_errors_total")


def run_service_phases(args: argparse.Namespace, workdir: Path, phrases: list[str],
                       raw_tps: float) -> tuple[dict[str, PhaseResult], dict[str, Any]]:
    """Phases 2-5 against a real service: their results, and evidence for the JSON line."""
    warmup = phrases[:WARMUP_PHRASES]
    single = phrases[WARMUP_PHRASES:WARMUP_PHRASES + SINGLE_PHRASES]
    service = phrases[WARMUP_PHRASES + SINGLE_PHRASES:]
    if raw_tps * args.duration * 1.3 > len(service):
        log(f"warning: {len(service)} unseen phrases may not last {args.duration} s at "
            f"{raw_tps:.0f} texts/s")
    port = pick_port(args.port)
    log_path = OUT_DIR / "embedder-service.log"
    OUT_DIR.mkdir(exist_ok=True)
    log_path.unlink(missing_ok=True)
    flush_redis(args.redis_url)
    env = {"EMBEDDER_REDIS_URL": args.redis_url, "EMBEDDER_BACKEND": args.backend}
    conns, threads, duration = args.connections, args.threads, args.duration
    redis_errors: list[float] = []  # per service process

    embedder = EmbedderProcess(port, env, log_path)
    try:
        log(f"starting the embedder on port {port} (gunicorn, Redis tier on)")
        embedder.start()
        url = embedder.url
        log("warm-up (untimed)")
        warm_up(url, write_bodies(workdir / "warmup.jsonl", warmup), "once", args, 2)
        results = {"service": run_phase("service", embedder, write_bodies(
            workdir / "service.jsonl", service), "once", conns, threads, duration)}
        results["single"] = run_phase("single", embedder, write_bodies(
            workdir / "single.jsonl", single), "once", 1, 1, duration)
        replay = answered_phrases(service, results["service"].wrk)
        replay_file = write_bodies(workdir / "replay.jsonl", replay)
        log(f"replaying {len(replay)} phrases answered in the service phase")
        results["warm"] = run_phase("warm", embedder, replay_file, "cycle", conns, threads,
                                    duration)
        redis_errors.append(redis_errors_so_far(url))
        keys = redis_keys(args.redis_url)
        log(f"Redis holds {keys} keys; restarting the embedder with its LRU off")
        embedder.stop()
        # LRU off: otherwise the first pass would promote every phrase into the LRU and the
        # rest of the phase would measure the LRU again.
        embedder = EmbedderProcess(port, {**env, "EMBEDDER_LRU_SIZE": "0"}, log_path)
        embedder.start()
        warm_up(url, replay_file, "cycle", args, 1)
        results["redis_warm"] = run_phase("redis_warm", embedder, replay_file, "cycle", conns,
                                          threads, duration)
        redis_errors.append(redis_errors_so_far(url))
    finally:
        embedder.stop()
        log(f"the service's log: {log_path.relative_to(ROOT)}")
    return results, {"redis_keys_after_warm": keys, "replayed_phrases": len(replay),
                     "redis_errors_per_process": redis_errors,
                     "service_torch_threads": service_torch_threads(log_path)}


def average_raw(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The two raw measurements (before and after the service ran) as one, runs kept.

    The mean is steadier than either on a shared machine; a wide gap flags a noisy run.
    """
    raw = dict(before)
    for key in ("raw_tps", "raw_tps_torch", "raw_small_batch_tps"):
        raw[key] = (before[key] + after[key]) / 2
        raw[f"{key}_runs"] = [round(before[key], 1), round(after[key], 1)]
    spread = abs(before["raw_tps"] - after["raw_tps"]) / raw["raw_tps"]
    if spread > 0.15:
        log(f"warning: raw throughput moved {spread:.0%} between its two runs; "
            "the machine is noisy, compare figures with care")
    raw["raw_spread"] = round(spread, 3)
    return raw


def summarise(results: dict[str, PhaseResult], raw: dict[str, Any]) -> dict[str, Any]:
    """The flat figures of the JSON line, plus the evidence behind them."""
    service, single, warm = results["service"], results["single"], results["warm"]
    out: dict[str, Any] = speedup(raw)
    for name, phase in results.items():
        out[f"{name}_tps"] = round(phase.tps, 1)
        out[f"{name}_p50_ms"] = round(phase.p50_ms, 2)
        out[f"{name}_p99_ms"] = round(phase.p99_ms, 2)
    ratio = service.tps / raw["raw_tps"] if raw["raw_tps"] else 0.0
    warm_over_single = warm.tps / single.tps if single.tps else 0.0
    out.update({
        "ratio": round(ratio, 3),
        "warm_over_single": round(warm_over_single, 1),
        "targets_met": {"ratio>=0.7": ratio >= 0.7, "warm>=20x_single": warm_over_single >= 20},
        "service_computed_fraction": round(service.metrics.fraction("computed"), 4),
        "single_computed_fraction": round(single.metrics.fraction("computed"), 4),
        "warm_lru_fraction": round(warm.metrics.fraction("lru"), 4),
        "redis_warm_redis_fraction": round(results["redis_warm"].metrics.fraction("redis"), 4),
        "client_seen_computed": {name: phase.wrk["computed"] for name, phase in results.items()},
        "mean_batch_size": round(service.metrics.mean_batch_size, 2),
        "errors": {name: phase.errors for name, phase in results.items()},
        "phrases_exhausted": {name: bool(phase.wrk["exhausted"])
                              for name, phase in results.items()},
        "requests": {name: phase.wrk["ok"] for name, phase in results.items()},
        "raw_tps_runs": raw["raw_tps_runs"],
        "raw_spread": raw["raw_spread"],
        "raw_small_batch_tps": round(raw["raw_small_batch_tps"], 1),
        "raw_small_batch_tps_runs": raw["raw_small_batch_tps_runs"],
        "raw_small_batch_size": raw["raw_small_batch_size"],
        "service_batch_size_buckets": service.metrics.batch_size_buckets,
        "service_mean_forward_ms": round(service.metrics.mean_forward_ms, 2),
        "service_cpu": service.cpu,
        # The event loop's CPU per answered request, and the share of the phase the model ran.
        "service_event_loop_ms_per_request": round(
            1000 * service.cpu["event_loop_cores"] / service.tps, 3) if service.tps else None,
        "service_model_busy": round(service.metrics.forward_s / (service.wrk["duration_us"] / 1e6),
                                    3),
        "redis_errors": {name: phase.metrics.redis_errors for name, phase in results.items()},
        "rejected_texts": {name: phase.metrics.rejected for name, phase in results.items()},
    })
    return out


def log_raw(raw: dict[str, Any]) -> None:
    log(f"raw {raw['backend']}: {raw['raw_tps']:.1f} texts/s at batch {raw['raw_batch_size']} "
        f"(sorted; torch fp32 {raw['raw_tps_torch']:.1f}), "
        f"{raw['raw_small_batch_tps']:.1f} texts/s at batch {raw['raw_small_batch_size']}")


def speedup(raw: dict[str, Any]) -> dict[str, Any]:
    """The backend's ceiling against torch fp32's, measured in the same run."""
    return {"backend": raw["backend"], "raw_tps": round(raw["raw_tps"], 1),
            "raw_tps_torch": round(raw["raw_tps_torch"], 1),
            "speedup_over_torch": round(raw["raw_tps"] / raw["raw_tps_torch"], 2)}


def ceiling_only(args: argparse.Namespace) -> dict[str, Any]:
    """``--ceiling-only``: phase 1 (and the head accuracy of a lossy backend), no service."""
    raw = run_raw_subprocess(args.raw_texts, args.connections, args.backend)
    log_raw(raw)
    figures = {**raw, **speedup(raw), **machine_info()}
    if not raw["identity"].endswith(":fp32"):
        log("measuring a head's accuracy on its vectors against fp32 (untimed)")
        figures["head_accuracy_delta"] = head_accuracy_delta(raw["backend"])
    return figures


def head_accuracy_delta(backend: str) -> float:
    """bench/backend_accuracy.py in a child process: the backend's head accuracy minus fp32's."""
    cmd = [sys.executable, str(ROOT / "bench" / "backend_accuracy.py"), "--backend", backend]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"the head accuracy measurement failed (exit {done.returncode})")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["head_accuracy_delta"])


def main() -> None:
    args = parse_args()
    # A plain `kill` of the bench must still run the finally blocks that stop the service.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.raw_only:
        print(json.dumps(measure_raw(args.raw_texts, args.connections, args.backend)))
        return
    if args.ceiling_only:
        print(json.dumps(ceiling_only(args)))
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed; install it with `apt-get install wrk` "
                         "(4.x, with Lua support) and run again")
    started = time.monotonic()
    info = machine_info()
    log(f"{info['cpu_count']} CPUs ({info['cpu_model']}), load average {info['loadavg_at_start']}")
    if info["loadavg_at_start"][0] > 0.5 * (info["cpu_count"] or 1):
        log("warning: the machine is already busy; figures will be noisy")
    phrases = load_phrases()
    log(f"{len(phrases)} distinct phrases; measuring the model in-process")
    before = run_raw_subprocess(args.raw_texts, args.connections, args.backend)
    log_raw(before)
    with tempfile.TemporaryDirectory(prefix="polyhead-bench-") as tmp:
        results, evidence = run_service_phases(args, Path(tmp), phrases, before["raw_tps"])
    log("measuring the model in-process again (the machine may have changed)")
    after = run_raw_subprocess(args.raw_texts, args.connections, args.backend)
    log_raw(after)
    raw = average_raw(before, after)
    figures = summarise(results, raw)
    figures.update(evidence)
    figures.update(info)
    figures.update({key: raw[key] for key in ("torch_version", "raw_torch_threads", "device",
                                              "dtype", "model", "identity", "max_batch_size",
                                              "max_wait_ms", "concurrent_batches",
                                              "threads_per_batch", "pack_tokens")})
    if not raw["identity"].endswith(":fp32"):  # lossy: what it costs a head
        log("measuring a head's accuracy on its vectors against fp32 (untimed)")
        figures["head_accuracy_delta"] = head_accuracy_delta(raw["backend"])
    figures.update({"connections": args.connections, "duration_s": args.duration,
                    "wrk_threads": args.threads, "loadavg_at_end": list(os.getloadavg()),
                    "wall_s": round(time.monotonic() - started, 1)})
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
