"""HTTP client pieces every service and tool shares: reading another polyhead service's error
message, and waiting for a service to be ready."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx


def polyhead_error_message(response: httpx.Response, max_chars: int = 300) -> str | None:
    """The message of a polyhead error body (written for callers, safe to relay), cut to
    ``max_chars``; None when the body is anything else (a proxy's error page), never relayed."""
    try:
        return str(response.json()["error"]["message"])[:max_chars]
    except (ValueError, KeyError, TypeError):
        return None


class NotReady(RuntimeError):
    """A service did not answer ``/ready`` with 200 in time (``exited``: its process died)."""

    def __init__(self, message: str, *, exited: bool) -> None:
        super().__init__(message)
        self.exited = exited


def wait_ready(url: str, *, timeout_s: float, alive: Callable[[], bool] | None = None,
               interval_s: float = 0.2) -> None:
    """Poll ``{url}/ready`` until it answers 200; raise ``NotReady`` after ``timeout_s``, or at
    once when ``alive`` (e.g. ``lambda: proc.poll() is None``) says the process has died."""
    deadline = time.monotonic() + timeout_s
    while True:
        if alive is not None and not alive():
            raise NotReady(f"{url}: the process exited before it was ready", exited=True)
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() >= deadline:
            raise NotReady(f"{url} was not ready after {timeout_s:g} s", exited=False)
        time.sleep(interval_s)
