"""Settings every service's gunicorn config shares (imported by deploy/gunicorn/*.py).

Workers are uvicorn workers. With more than one worker, Prometheus metrics go through a
multiprocess directory so ``/metrics`` adds up all workers: ``PROMETHEUS_MULTIPROC_DIR`` when
set (created if missing, emptied of a previous run's files), else a new temporary folder.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

# The files prometheus-client writes in the multiprocess folder (one set per process id).
_METRIC_FILE = re.compile(r"(counter|gauge_\w+|histogram|summary)_\d+\.db")


def prepare_multiproc_dir(folder: str) -> None:
    """Create ``folder`` and remove the metric files a previous run left there (their process
    ids are gone; prometheus-client wants the folder wiped before start-up)."""
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    for file in path.iterdir():
        if _METRIC_FILE.fullmatch(file.name):
            file.unlink(missing_ok=True)


def common(service: str, default_bind: str, default_workers: int = 1) -> dict[str, Any]:
    prefix = service.upper()
    workers = int(os.environ.get(f"{prefix}_WORKERS", default_workers))
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=f"polyhead-{service}-")
    return {
        # Internal services default to loopback; images set POLYHEAD_BIND=0.0.0.0:<port>, which
        # exposes them on the container network only (see docker-compose.yml, deploy/k8s).
        "bind": os.environ.get(f"{prefix}_BIND") or os.environ.get("POLYHEAD_BIND") or default_bind,
        "workers": workers,
        "worker_class": "uvicorn_worker.UvicornWorker",
        "timeout": int(os.environ.get(f"{prefix}_WORKER_TIMEOUT_S", 120)),
        "graceful_timeout": 30,
        "keepalive": 75,  # above typical load-balancer idle timeouts (60 s)
        "accesslog": None,  # request metrics and app logs cover it, cheaper
        # Forwarded headers are the app's to judge (the gateway's GATEWAY_TRUSTED_PROXIES).
        "forwarded_allow_ips": "",
        "wsgi_app": f"services.{service}.app:create_app()",
        "on_starting": on_starting,
    }


def on_starting(server: Any) -> None:
    """gunicorn hook, once in the master before any worker starts (not on reloads)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        prepare_multiproc_dir(os.environ["PROMETHEUS_MULTIPROC_DIR"])


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn hook: drop a dead worker's live gauges from the multiprocess metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]  # unannotated upstream
