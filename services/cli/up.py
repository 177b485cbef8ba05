"""``polyhead up``: the whole suite as local processes, on embedded defaults.

Embedder, classifier, trainer and gateway start from this Python, each logging to
``<data>/logs/<name>.log``; SQLite, the local artifact folder and the in-process phrase cache
unless ``DATABASE_URL`` / ``REDIS_URL`` / ``ARTIFACT_STORE`` say otherwise. On first start it
creates an API key and trains a demo head (``clinc-intents``) from the CLINC150 data in the
repository, then prints the URLs, the key and a ``curl`` to paste. Ctrl-C stops everything, in
dependency order: the gateway, then the classifier and the trainer, then the embedder.

The data folder defaults to the repository's ``var/`` whatever the current directory, so
``polyhead keys`` (same default, same ``--data-dir``) reaches the database ``polyhead up`` uses.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from services.cli.data_dir import ROOT, add_data_dir, database_url
from services.cli.demo import DEMO_MODEL, DemoError, train_demo
from services.cli.ports import bind_error, listener
from shared.http import NotReady, wait_ready

SERVICES = ("embedder", "trainer", "classifier", "gateway")
# Each tier stops before the next: nothing is left calling a service that is already gone.
STOP_ORDER = (("gateway",), ("classifier", "trainer"), ("embedder",))


class UpError(Exception):
    pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_dir(parser)
    parser.add_argument("--port", type=int, default=8000,
                        help="gateway port; classifier +2, trainer +3, embedder +1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--no-demo", action="store_true", help="do not train the demo head")
    parser.add_argument("--demo-per-label", type=int, default=30,
                        help="CLINC150 phrases per intent for the demo head")
    parser.add_argument("--demo-labels", type=int, default=150, help="intents in the demo head")


def _environment(data: Path, ports: dict[str, int], host: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = database_url(data)
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
    try:
        wait_ready(url, timeout_s=timeout_s, alive=lambda: proc.poll() is None, interval_s=0.3)
    except NotReady as exc:
        if not exc.exited:
            raise UpError(f"{name} was not ready after {timeout_s:.0f} s; "
                          f"see {logs / name}.log") from None
        tail = (logs / f"{name}.log").read_text(errors="replace")[-2000:]
        raise UpError(f"{name} exited with code {proc.returncode}; its log ends:\n{tail}") from None


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


def _taken_ports(ports: dict[str, int], host: str) -> list[str]:
    """One line per port a service could not bind, naming the process holding it if known."""
    taken = []
    for name, port in ports.items():
        error = bind_error(host, port)
        if error is not None:
            owner = listener(port) if error.errno == errno.EADDRINUSE else None
            taken.append(f"port {port} ({name}) on {host}: {error.strerror}"
                         + (f", held by {owner}" if owner else ""))
    return taken


class _Interrupts:
    """Ctrl-C and SIGTERM raise KeyboardInterrupt wherever the launcher is, except while a
    child is being started: there the signal waits until the child is recorded (so it is
    stopped too)."""

    def __init__(self) -> None:
        self.deferring = self.pending = False
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._raise)

    def _raise(self, *_: Any) -> None:
        if self.deferring:
            self.pending = True
        else:
            raise KeyboardInterrupt

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False
        if self.pending:
            raise KeyboardInterrupt

    @staticmethod
    def ignore() -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


def up(args: argparse.Namespace) -> int:
    data = Path(args.data_dir).resolve()
    ports = {"gateway": args.port, "embedder": args.port + 1, "classifier": args.port + 2,
             "trainer": args.port + 3}
    taken = _taken_ports(ports, args.host)
    if taken:
        print("polyhead up: cannot start, " + "; ".join(taken) + ". Stop that process (another "
              "polyhead up?) or choose other ports with --port.", file=sys.stderr)
        return 1
    logs = data / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    urls = {name: f"http://{args.host}:{port}" for name, port in ports.items()}
    env = _environment(data, ports, args.host)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    interrupts = _Interrupts()
    ready = False
    try:
        key = _api_key(data, env)
        for name in SERVICES:
            with interrupts.deferred():
                procs[name] = _start(name, ports[name], args.host, env, logs)
        for name in SERVICES:
            print(f"waiting for {name} ({urls[name]}) ...", file=sys.stderr)
            _wait_ready(name, urls[name], procs[name], logs)
        if not args.no_demo:
            train_demo(urls["trainer"], urls["gateway"], key, args)
        print(_banner(urls, key, data, console=_serves_console(urls["gateway"]),
                      model=_model_line(urls["embedder"])), flush=True)
        ready = True
        while True:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    raise UpError(f"{name} exited with code {proc.returncode}; "
                                  f"see {logs / name}.log")
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0 if ready else 130
    except (UpError, DemoError) as exc:
        print(f"polyhead up: {exc}", file=sys.stderr)
        return 1
    finally:
        interrupts.ignore()  # a second Ctrl-C does not cut the orderly stop short
        _stop_all(procs)


def _stop_all(procs: dict[str, subprocess.Popen[bytes]], timeout_s: float = 30) -> None:
    """SIGTERM tier by tier (STOP_ORDER), each waited for (killed after ``timeout_s``) before
    the next: the gateway drains its inference log while the classifiers still answer, and the
    trainer puts a job it is running back in the queue while the embedder still answers."""
    if procs:
        print("polyhead up: stopping ...", file=sys.stderr)
    for tier in STOP_ORDER:
        running = [procs[name] for name in tier if name in procs and procs[name].poll() is None]
        for proc in running:
            proc.terminate()
        deadline = time.monotonic() + timeout_s
        for proc in running:
            try:
                proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    print("polyhead up: stopped", file=sys.stderr)


def _serves_console(gateway: str) -> bool:
    """Whether the gateway serves the web console (``GATEWAY_CONSOLE=false`` turns it off)."""
    try:
        return httpx.get(f"{gateway}/console", timeout=10, follow_redirects=True).is_success
    except httpx.HTTPError:
        return False


def _model_line(embedder: str) -> str:
    """The embedder's model and backend, and why that backend (``/v1/models``)."""
    try:
        [card] = httpx.get(f"{embedder}/v1/models", timeout=10).json()["data"]
        return f"{card['id']} on {card['backend']} ({card['backend_chosen_by']})"
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return "(the embedder did not say)"


def _banner(urls: dict[str, str], key: str, data: Path, *, console: bool,
            model: str = "") -> str:
    console_line = (f"\n  console     {urls['gateway']}/console   (sign in with the API key below)"
                    if console else "")
    model_line = f"\n  model       {model}" if model else ""
    return f"""
polyhead is up (Ctrl-C stops it). Data and logs: {data}
  gateway     {urls['gateway']}   (API docs: {urls['gateway']}/docs){console_line}
  classifier  {urls['classifier']}   trainer {urls['trainer']}   embedder {urls['embedder']}\
{model_line}
  API key     {key}   (also in {data / 'api-key'})

try:
  curl -s {urls['gateway']}/v1/models/{DEMO_MODEL}/predict -H 'Authorization: Bearer {key}' \\
       -H 'content-type: application/json' \\
       -d '{{"text": "how much money is in my checking account"}}'
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    u = sub.add_parser("up", help="run the whole suite locally (embedded defaults)")
    add_arguments(u)
    u.set_defaults(func=up, local=True)
