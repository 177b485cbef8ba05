"""The gunicorn configs as Kubernetes runs them: a real gunicorn with two workers and
``PROMETHEUS_MULTIPROC_DIR`` set (deploy/k8s/configmap.yaml), whose folder may not exist yet or
may hold a previous run's files; ``/metrics`` adds up both workers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.http import NotReady, wait_ready
from tests.conftest import ROOT, free_port
from tests.deploy.test_static import tool


@pytest.fixture
def embedder_under_gunicorn(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The embedder (fake backend: no model) under deploy/gunicorn/embedder.py, 2 workers."""
    folder = tmp_path / "prometheus"  # like /tmp/prometheus in a fresh container: absent
    port = free_port()
    env = os.environ | {"EMBEDDER_WORKERS": "2", "EMBEDDER_BIND": f"127.0.0.1:{port}",
                        "EMBEDDER_BACKEND": "fake", "PROMETHEUS_MULTIPROC_DIR": str(folder),
                        "LOG_JSON": "false", "POLYHEAD_ENV": "test"}
    log = (tmp_path / "gunicorn.log").open("wb")
    proc = subprocess.Popen([tool("gunicorn"), "-c", "deploy/gunicorn/embedder.py"], cwd=ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_ready(url, timeout_s=60, alive=lambda: proc.poll() is None, interval_s=0.1)
        except NotReady as exc:
            pytest.fail(f"{exc}:\n{(tmp_path / 'gunicorn.log').read_text()}")
        yield url, folder
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        log.close()


def health_count(metrics: str) -> float:
    """Requests to /health counted by polyhead_http_request_duration_seconds."""
    return sum(float(value) for value in re.findall(
        r'polyhead_http_request_duration_seconds_count\{[^}]*route="/health"[^}]*\} (\S+)',
        metrics))


def test_two_workers_with_prometheus_multiproc_dir_serve_metrics(
        embedder_under_gunicorn: tuple[str, Path]) -> None:
    url, folder = embedder_under_gunicorn
    for _ in range(40):  # new connections: the kernel spreads them over both workers
        with httpx.Client(base_url=url, timeout=5) as fresh:
            assert fresh.get("/health").status_code == 200
    answer = httpx.get(f"{url}/metrics", timeout=5)
    assert answer.status_code == 200, answer.text
    assert health_count(answer.text) >= 40  # what every worker counted, added up
    writers = {m.group(1) for p in folder.iterdir() if (m := re.search(r"_(\d+)\.db$", p.name))}
    assert len(writers) == 2, sorted(p.name for p in folder.iterdir())  # one set per worker


def test_a_previous_runs_metric_files_are_cleared_at_start(tmp_path: Path) -> None:
    """A container restart keeps its emptyDir: the dead processes' files must not add up."""
    from shared.gunicorn import prepare_multiproc_dir

    folder = tmp_path / "prometheus"
    folder.mkdir()
    stale = [folder / "counter_4242.db", folder / "histogram_4242.db",
             folder / "gauge_livemax_4242.db"]
    for path in stale:
        path.write_bytes(b"old")
    (folder / "notes.txt").write_text("not ours")
    prepare_multiproc_dir(str(folder))
    assert not any(p.exists() for p in stale) and (folder / "notes.txt").exists()
    prepare_multiproc_dir(str(tmp_path / "new" / "folder"))
    assert (tmp_path / "new" / "folder").is_dir()
