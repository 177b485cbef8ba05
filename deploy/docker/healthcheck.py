"""Container health probe: ``python deploy/docker/healthcheck.py [/path]`` exits 0 on HTTP 200.

Slim images have no curl, and this needs only the standard library. The port is read from
``<SERVICE>_BIND`` or ``POLYHEAD_BIND`` (the variables gunicorn binds with, so overriding them keeps
the probe right), else ``POLYHEAD_PORT``; ``POLYHEAD_SERVICE`` names the service.
"""

from __future__ import annotations

import http.client
import os
import sys
import urllib.request


def port() -> str:
    service = os.environ.get("POLYHEAD_SERVICE", "embedder").upper()
    bind = os.environ.get(f"{service}_BIND") or os.environ.get("POLYHEAD_BIND", "")
    return bind.rsplit(":", 1)[1] if ":" in bind else os.environ.get("POLYHEAD_PORT", "8001")


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "/health"
    url = f"http://127.0.0.1:{port()}{path}"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except (OSError, http.client.HTTPException) as exc:  # 503, refused, timeout: unhealthy
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
