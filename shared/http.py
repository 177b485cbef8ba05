"""HTTP pieces every service shares: the body size limit, the NUL-URL refusal, reading another
polyhead service's error message, and waiting for a service to be ready."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import error_response


class BodySizeLimit:
    """Refuse bodies over ``max_bytes`` with 413, by Content-Length or while streaming.

    ``overrides`` maps path prefixes to their own limit (e.g. uploads of training data).
    """

    def __init__(self, app: ASGIApp, max_bytes: int,
                 overrides: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.overrides = overrides or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = next((n for prefix, n in self.overrides.items()
                      if scope["path"].startswith(prefix)), self.max_bytes)
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                response = error_response(413, "invalid_request_error", self._message(limit))
                await response(scope, receive, send)
                return
        seen, exceeded = 0, False

        async def limited_receive() -> Message:
            # Past the limit the app sees a disconnect: it stops reading and we answer 413.
            nonlocal seen, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not exceeded:
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded:
            await error_response(413, "invalid_request_error",
                                 self._message(limit))(scope, receive, send)

    @staticmethod
    def _message(limit: int) -> str:
        return f"request body is larger than the limit of {limit} bytes"


class RefuseNul:
    """Answer 422 to a URL holding a NUL character (``%00``): no route wants one, and
    PostgreSQL refuses NUL in text, so it would otherwise surface deep in a query."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and ("\x00" in scope["path"]
                                        or b"%00" in scope.get("query_string", b"")):
            response = error_response(422, "invalid_request_error",
                                      "the URL holds a NUL character (%00)", param="url")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


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
