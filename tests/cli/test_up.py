"""``polyhead up`` end to end, as users meet it: the launcher as a subprocess.

One suite serves every test here (two launcher runs in all): the first run is stopped with
Ctrl-C while it trains the demo head, the second finishes that job (one demo version, no
attempt used by the stop), and while it is up a second ``polyhead up``, ``polyhead keys`` from
another directory and ``polyhead promote`` are checked against it. The last test stops it.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from services.cli import main as cli
from services.cli.up import _banner
from shared.db.models import Inference, TrainingJob
from tests.conftest import ROOT

pytestmark = pytest.mark.model

ENV = {k: v for k, v in os.environ.items()
       if k not in ("DATABASE_URL", "REDIS_URL", "ARTIFACT_STORE")}
DEMO = ["--demo-labels", "20", "--demo-per-label", "10"]


def free_block(size: int = 4) -> int:
    for _ in range(100):
        base = random.randint(20_000, 40_000)
        try:
            for port in range(base, base + size):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise AssertionError("no block of free ports")


class Launcher:
    """One ``polyhead up`` subprocess, its output in a file."""

    def __init__(self, out: Path, port: int, data: Path, env: dict[str, str]) -> None:
        self.out = out
        with out.open("wb") as f:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "up", "--data-dir", str(data),
                 "--port", str(port), *DEMO], cwd=ROOT, env=env, stdout=f,
                stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.out.read_text(errors="replace")

    def wait_for(self, line: str, timeout_s: float = 240) -> None:
        deadline = time.monotonic() + timeout_s
        while line not in self.text():
            assert self.proc.poll() is None, self.text()[-3000:]
            assert time.monotonic() < deadline, f"no {line!r}:\n{self.text()[-3000:]}"
            time.sleep(0.2)

    def interrupt(self) -> int:
        """Ctrl-C, as a terminal sends it; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(90)


@dataclass
class Suite:
    port: int
    data: Path
    tmp: Path
    key: str
    first: Launcher
    first_exit: int
    interrupted: dict[str, Any]   # the demo job's record right after the first run stopped
    second: Launcher

    def url(self, service: str) -> str:
        offset = {"gateway": 0, "embedder": 1, "classifier": 2, "trainer": 3}[service]
        return f"http://127.0.0.1:{self.port + offset}"


def demo_jobs(data: Path) -> list[dict[str, Any]]:
    engine = create_engine(f"sqlite:///{data / 'polyhead.db'}")
    try:
        with Session(engine) as s:
            rows = s.scalars(select(TrainingJob).where(TrainingJob.model_name == "clinc-intents"))
            return [{"status": r.status, "stage": r.stage, "attempts": r.attempts,
                     "error": r.error} for r in rows]
    finally:
        engine.dispose()


def wait_for_training(trainer: str, first: Launcher, timeout_s: float = 240) -> None:
    """Until the demo job is embedding: the moment to press Ctrl-C."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert first.proc.poll() is None, first.text()[-3000:]
        assert time.monotonic() < deadline, first.text()[-3000:]
        try:
            jobs = httpx.get(f"{trainer}/v1/jobs", params={"model": "clinc-intents"},
                             timeout=2).json()["data"]
            if jobs and jobs[0]["status"] == "running" and jobs[0]["stage"] == "embedding":
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    tmp = tmp_path_factory.mktemp("up")
    port, data = free_block(), tmp / "var"
    # One text per embedder call: the first run's demo job lasts long enough to be stopped.
    first = Launcher(tmp / "first.out", port, data, ENV | {"TRAINER_EMBED_BATCH": "1"})
    try:
        wait_for_training(f"http://127.0.0.1:{port + 3}", first)
    finally:
        first_exit = first.interrupt()
    interrupted = demo_jobs(data)
    second = Launcher(tmp / "second.out", port, data, ENV)
    try:
        second.wait_for("polyhead is up")
        yield Suite(port=port, data=data, tmp=tmp, key=(data / "api-key").read_text().strip(),
                    first=first, first_exit=first_exit, interrupted=interrupted[0]
                    if len(interrupted) == 1 else {"jobs": interrupted}, second=second)
    finally:
        second.interrupt()


def test_ctrl_c_during_demo_training_leaves_one_job_that_the_next_start_finishes(
        suite: Suite) -> None:
    assert suite.first_exit == 130, suite.first.text()[-3000:]
    assert "polyhead up: stopped" in suite.first.text()
    # The stop put the running job back in the queue and gave its attempt back.
    assert suite.interrupted["status"] == "queued", suite.interrupted
    assert suite.interrupted["attempts"] == 0, suite.interrupted
    assert "finishing the demo head 'clinc-intents'" in suite.second.text()
    model = httpx.get(f"{suite.url('trainer')}/v1/models/clinc-intents", timeout=10).json()
    assert [v["version"] for v in model["versions"]] == [1]
    jobs = httpx.get(f"{suite.url('trainer')}/v1/jobs", params={"model": "clinc-intents"},
                     timeout=10).json()["data"]
    assert [(j["status"], j["attempts"]) for j in jobs] == [("succeeded", 1)]
    trainer_log = (suite.data / "logs" / "trainer.log").read_text(errors="replace")
    assert "unhandled exception" not in trainer_log


def test_predict_through_the_printed_url(suite: Suite) -> None:
    printed = suite.second.text()
    url = f"{suite.url('gateway')}/v1/models/clinc-intents/predict"
    assert suite.key in printed and url in printed
    # EMBEDDER_BACKEND=auto: the banner says which backend serves, and that it was measured.
    assert re.search(r"\n  model +\S+ on (onnx|torch) \(measured ", printed), printed[-2000:]
    answer = httpx.post(url, json={"text": "how much money is in my checking account"},
                        headers={"Authorization": f"Bearer {suite.key}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0]["label"] == "balance"


def test_the_demo_check_is_no_users_inference(suite: Suite) -> None:
    """``polyhead up`` asks the gateway whether it serves the demo head with an explanation
    (not logged): the inference log holds what users asked, and reports count nothing else."""
    text = f"what is my balance {time.monotonic_ns()}"
    answer = httpx.post(f"{suite.url('gateway')}/v1/models/clinc-intents/predict",
                        json={"text": text}, headers={"Authorization": f"Bearer {suite.key}"},
                        timeout=30)
    assert answer.status_code == 200, answer.text
    engine = create_engine(f"sqlite:///{suite.data / 'polyhead.db'}")
    try:
        deadline = time.monotonic() + 30
        while True:  # shipped in the order written: the demo check's row would be in first
            with Session(engine) as s:
                texts = list(s.scalars(select(Inference.input_text)))
            if text in texts or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        engine.dispose()
    assert text in texts and "hello" not in texts


def test_the_readme_tour_works_as_pasted(suite: Suite) -> None:
    """README's five-minute tour, run by bash against this suite: only its address, data
    folder and command path differ from a ``scripts/run`` (and each call must succeed)."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- tour:", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    script = (block.replace("localhost:8000", suite.url("gateway").removeprefix("http://"))
              .replace("var/api-key", str(suite.data / "api-key"))
              .replace(".venv/bin/polyhead", f"{sys.executable} -m services.cli")
              .replace("curl -s ", "curl -sf "))
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True,
                          text=True, timeout=120, cwd=ROOT,
                          env=ENV | {"TRAINER_URL": suite.url("trainer")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.count('"label":"balance"') >= 2, done.stdout  # the predictions
    assert '"explained_label":"balance"' in done.stdout  # the explanation
    assert "clinc-intents: production v1" in done.stdout  # polyhead models


def test_the_printed_console_link_serves_the_console(suite: Suite) -> None:
    link = f"{suite.url('gateway')}/console"
    assert link in suite.second.text()
    page = httpx.get(link, timeout=10)
    assert page.status_code == 200 and "/console/app.js" in page.text


def test_the_banner_names_the_console_only_when_the_gateway_serves_it() -> None:
    urls = {name: f"http://127.0.0.1:{port}" for name, port in (
        ("gateway", 8000), ("classifier", 8002), ("trainer", 8003), ("embedder", 8001))}
    assert "/console" in _banner(urls, "k", Path("/data"), console=True)
    assert "/console" not in _banner(urls, "k", Path("/data"), console=False)
    assert "model       m on onnx (why)" in _banner(urls, "k", Path("/data"), console=False,
                                                   model="m on onnx (why)")


def test_a_second_up_names_the_taken_port_and_starts_nothing(suite: Suite) -> None:
    started = time.monotonic()
    again = subprocess.run(
        [sys.executable, "-m", "services.cli", "up", "--data-dir", str(suite.tmp / "other"),
         "--port", str(suite.port)], cwd=ROOT, env=ENV, capture_output=True, text=True,
        timeout=60)
    assert again.returncode == 1, again.stderr
    assert time.monotonic() - started < 20
    assert f"port {suite.port} (gateway) on 127.0.0.1: Address already in use" in again.stderr
    assert "held by pid" in again.stderr and "services.gateway" in again.stderr
    assert "polyhead is up" not in again.stdout and "waiting for" not in again.stderr
    assert not (suite.tmp / "other").exists()


def test_keys_create_from_another_directory_reaches_the_running_gateway(suite: Suite) -> None:
    elsewhere = suite.tmp / "elsewhere"
    elsewhere.mkdir()
    created = subprocess.run(
        [sys.executable, "-m", "services.cli", "keys", "create", "other-app",
         "--data-dir", str(suite.data)], cwd=elsewhere, env=ENV | {"PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    assert f"stored in sqlite:///{suite.data / 'polyhead.db'}" in created.stderr
    assert not (elsewhere / "var").exists()
    answer = httpx.post(f"{suite.url('gateway')}/v1/models/clinc-intents/predict",
                        json={"text": "what is my balance"}, timeout=30,
                        headers={"Authorization": f"Bearer {created.stdout.strip()}"})
    assert answer.status_code == 200, answer.text


def test_promoting_the_production_version_says_so(
        suite: Suite, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--url", suite.url("trainer"), "promote", "clinc-intents", "1"]) == 0
    assert capsys.readouterr().out == (
        "clinc-intents: v1 is already in production; nothing changed\n")


def test_ctrl_c_stops_everything(suite: Suite) -> None:
    assert suite.second.interrupt() == 0
    assert "polyhead up: stopped" in suite.second.text()
    for port in range(suite.port, suite.port + 4):  # every service is gone
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
