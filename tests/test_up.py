"""``polyhead up`` end to end: start the suite, predict through the printed URL, Ctrl-C."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.model


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


def test_up_predict_and_stop(tmp_path: Path) -> None:
    port = free_block()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "ARTIFACT_STORE")}
    out = (tmp_path / "up.out").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "up", "--data-dir", str(tmp_path / "var"),
         "--port", str(port), "--demo-per-label", "8", "--demo-labels", "10"],
        cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    try:
        deadline = time.monotonic() + 240
        while b"polyhead is up" not in (tmp_path / "up.out").read_bytes():
            assert proc.poll() is None, (tmp_path / "up.out").read_text()[-3000:]
            assert time.monotonic() < deadline, "polyhead up did not come up"
            time.sleep(0.5)
        printed = (tmp_path / "up.out").read_text()
        key = (tmp_path / "var" / "api-key").read_text().strip()
        assert key in printed and f"http://127.0.0.1:{port}/v1/models/clinc-intents/predict" in printed
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/models/clinc-intents/predict",
                            json={"text": "how much money is in my checking account"},
                            headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"][0]["label"] == "balance"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    assert "polyhead up: stopped" in (tmp_path / "up.out").read_text()
    for p in range(port, port + 4):  # every service is gone
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{p}/health", timeout=1)
