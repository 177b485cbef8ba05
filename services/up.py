"""``polyhead up``: the whole suite as local processes, on embedded defaults.

Embedder, classifier, trainer and gateway start from this Python, each logging to
``<data>/logs/<name>.log``; SQLite, the local artifact folder and the in-process phrase cache
unless ``DATABASE_URL`` / ``REDIS_URL`` / ``ARTIFACT_STORE`` say otherwise. On first start it
creates an API key and trains a demo head (``clinc-intents``) from the CLINC150 data in the
repository, then prints the URLs, the key and a ``curl`` to paste. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DEMO_CSV = ROOT / "data" / "clinc150" / "train.csv"
DEMO_MODEL = "clinc-intents"
SERVICES = ("embedder", "trainer", "classifier", "gateway")


class UpError(Exception):
    pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default="var", help="database, artifacts, logs, key")
    parser.add_argument("--port", type=int, default=8000,
                        help="gateway port; classifier +2, trainer +3, embedder +1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--no-demo", action="store_true", help="do not train the demo head")
    parser.add_argument("--demo-per-label", type=int, default=30,
                        help="CLINC150 phrases per intent for the demo head")
    parser.add_argument("--demo-labels", type=int, default=150, help="intents in the demo head")


def _environment(data: Path, ports: dict[str, int], host: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", f"sqlite:///{data / 'polyhead.db'}")
    env.setdefault("ARTIFACT_STORE", str(data / "artifacts"))
    env.setdefault("LOG_JSON", "false")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.update({"EMBEDDER_URL": f"http://{host}:{ports['embedder']}",
                "CLASSIFIER_URLS": f"http://{host}:{ports['classifier']}",
                "GATEWAY_TRAINER_URL": f"http://{host}:{ports['trainer']}",
                "GATEWAY_LOG_DIR": str(data / "inference-log"),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))})
    if env.get("REDIS_URL"):
        env.setdefault("TRAINER_RUN_WORKER", "true")  # the launcher runs no separate worker
    return env


def _start(name: str, port: int, host: str, env: dict[str, str], logs: Path
           ) -> subprocess.Popen[bytes]:
    with (logs / f"{name}.log").open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", f"services.{name}", "--host", host,
                                 "--port", str(port)], env=env, stdout=out,
                                stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)


def _wait_ready(name: str, url: str, proc: subprocess.Popen[bytes], logs: Path,
                timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (logs / f"{name}.log").read_text(errors="replace")[-2000:]
            raise UpError(f"{name} exited with code {proc.returncode}; its log ends:\n{tail}")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise UpError(f"{name} was not ready after {timeout_s:.0f} s; see {logs / name}.log")


def _api_key(data: Path, env: dict[str, str]) -> str:
    path = data / "api-key"
    if path.exists() and path.read_text().strip():
        return path.read_text().strip()
    from services.gateway.auth import KeyStore
    from shared.db import make_engine, session_factory
    from shared.db.migrate import upgrade

    engine = make_engine(env["DATABASE_URL"])
    try:
        upgrade(engine)
        store = KeyStore(session_factory(engine))
        store.revoke("polyhead-up")
        key = store.create("polyhead-up", ["predict", "admin"])
    finally:
        engine.dispose()
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def _demo_csv(per_label: int, labels: int) -> bytes:
    with DEMO_CSV.open(newline="", encoding="utf-8") as f:
        rows = [(r["text"], r["label"]) for r in csv.DictReader(f)]
    chosen = set(sorted({label for _, label in rows})[:labels])
    counts: dict[str, int] = {}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["text", "label"])
    for text, label in rows:
        if label in chosen and counts.get(label, 0) < per_label:
            counts[label] = counts.get(label, 0) + 1
            writer.writerow([text, label])
    return out.getvalue().encode()


def _train_demo(trainer_url: str, gateway_url: str, key: str, args: argparse.Namespace) -> None:
    from services.cli import follow

    with httpx.Client(base_url=trainer_url, timeout=60) as trainer:
        models = trainer.get("/v1/models").json()["data"]
        if any(m["name"] == DEMO_MODEL and m["production_version"] for m in models):
            return
        if not DEMO_CSV.exists():
            print(f"polyhead up: {DEMO_CSV} not found; no demo head", file=sys.stderr)
            return
        print(f"training the demo head {DEMO_MODEL!r} from CLINC150 (first start only)",
              file=sys.stderr)
        job = trainer.post("/v1/jobs", data={"name": DEMO_MODEL, "head": "logreg"}, files={
            "file": ("clinc150.csv", _demo_csv(args.demo_per_label, args.demo_labels))}).json()
        done = follow(trainer, job["id"])
        if done.status != "succeeded":
            raise UpError(f"demo training failed: {done.error}")
    # The classifier and the gateway pick the new head up within a few seconds.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = httpx.post(f"{gateway_url}/v1/models/{DEMO_MODEL}/predict", timeout=10,
                            json={"text": "hello"}, headers={"Authorization": f"Bearer {key}"})
        if answer.status_code == 200:
            return
        time.sleep(0.5)
    raise UpError("the demo head did not reach the gateway within 60 s")


def up(args: argparse.Namespace) -> int:
    data = Path(args.data_dir).resolve()
    logs = data / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    ports = {"gateway": args.port, "embedder": args.port + 1, "classifier": args.port + 2,
             "trainer": args.port + 3}
    urls = {name: f"http://{args.host}:{port}" for name, port in ports.items()}
    env = _environment(data, ports, args.host)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        key = _api_key(data, env)
        for name in SERVICES:
            procs[name] = _start(name, ports[name], args.host, env, logs)
        for name in SERVICES:
            print(f"waiting for {name} ({urls[name]}) ...", file=sys.stderr)
            _wait_ready(name, urls[name], procs[name], logs)
        if not args.no_demo:
            _train_demo(urls["trainer"], urls["gateway"], key, args)
        print(_banner(urls, key, data), flush=True)
        while not stopping:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    raise UpError(f"{name} exited with code {proc.returncode}; "
                                  f"see {logs / name}.log")
            time.sleep(0.5)
        return 0
    except UpError as exc:
        print(f"polyhead up: {exc}", file=sys.stderr)
        return 1
    finally:
        _stop_all(procs)


def _stop_all(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM everything (gateway first, so it drains its inference log), then wait."""
    for name in reversed(SERVICES):
        proc = procs.get(name)
        if proc is not None and proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + 30
    for proc in procs.values():
        try:
            proc.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    print("polyhead up: stopped", file=sys.stderr)


def _banner(urls: dict[str, str], key: str, data: Path) -> str:
    return f"""
polyhead is up (Ctrl-C stops it). Data and logs: {data}
  gateway     {urls['gateway']}   (API docs: {urls['gateway']}/docs)
  classifier  {urls['classifier']}   trainer {urls['trainer']}   embedder {urls['embedder']}
  API key     {key}   (also in {data / 'api-key'})

try:
  curl -s {urls['gateway']}/v1/models/{DEMO_MODEL}/predict -H 'Authorization: Bearer {key}' \\
       -H 'content-type: application/json' -d '{{"text": "how much money is in my checking account"}}'
"""
