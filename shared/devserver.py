"""``python -m services.<name>``: one uvicorn process, for development and ``polyhead up``.

Production runs gunicorn with uvicorn workers: see deploy/gunicorn/<name>.py.
"""

from __future__ import annotations

import argparse

import uvicorn


def main(service: str, default_port: int) -> None:
    parser = argparse.ArgumentParser(description=f"Run the polyhead {service} (development).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    args = parser.parse_args()
    # The app is named by its import string: shared code never imports a service.
    uvicorn.run(f"services.{service}.app:create_app", factory=True, host=args.host,
                port=args.port, log_config=None, access_log=False,
                proxy_headers=False)  # forwarded headers are the app's to judge (the gateway's)
