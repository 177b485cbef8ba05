"""Development entry point: ``python -m services.gateway`` (one uvicorn process).

Production: gunicorn with deploy/gunicorn/gateway.py.
"""

from __future__ import annotations

import argparse

import uvicorn


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the polyhead gateway (development).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    uvicorn.run("services.gateway.app:create_app", factory=True, host=args.host, port=args.port,
                log_config=None, access_log=False)


if __name__ == "__main__":
    main()
