"""One call to the gateway's public API from a CLI command, with the CLI's exit codes.

The commands that talk to the gateway (``explain``, ``shadow``, ``canary``, ``withdraw``,
``compare``) take ``--gateway`` (env ``GATEWAY_URL``) and ``--key`` (env ``POLYHEAD_API_KEY``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

import httpx

from shared.http import polyhead_error_message


def add_gateway_arguments(p: argparse.ArgumentParser, scope: str) -> None:
    """``--gateway`` and ``--key`` (a key with ``scope``), from the environment by default."""
    p.add_argument("--gateway", default=os.environ.get("GATEWAY_URL", "http://127.0.0.1:8000"),
                   help="gateway URL (env GATEWAY_URL)")
    p.add_argument("--key", default=os.environ.get("POLYHEAD_API_KEY"),
                   help=f"API key with the {scope} scope (env POLYHEAD_API_KEY)")


def call(args: argparse.Namespace, method: str, path: str, show: Callable[[bytes], str], *,
         body: dict[str, Any] | None = None, params: dict[str, Any] | None = None,
         timeout_s: float = 30) -> int:
    """Ask and print ``show(answer)``; 1 when the gateway refuses (its message), 2 when it is
    unreachable."""
    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    try:
        response = httpx.request(method, args.gateway.rstrip("/") + path, json=body,
                                 params=params, headers=headers, timeout=timeout_s)
    except httpx.TransportError as exc:
        print(f"polyhead: cannot reach the gateway at {args.gateway} ({exc}); is it running?",
              file=sys.stderr)
        return 2
    if response.status_code != 200:
        message = polyhead_error_message(response, max_chars=500) or response.text[:500]
        print(f"polyhead: {response.status_code}: {message}", file=sys.stderr)
        return 1
    print(show(response.content))
    return 0
