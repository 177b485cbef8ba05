"""The ASGI middleware every app runs (:func:`shared.web.app.build_app`): the request id, the
body size limit, the NUL-URL refusal, and request latency (with the optional access log)."""

from __future__ import annotations

import logging
import time

from asgi_correlation_id import CorrelationIdMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.metrics import HTTP_LATENCY
from shared.request_id import HEADER, is_acceptable_id
from shared.settings import ServiceSettings
from shared.web.errors import error_response

access_log = logging.getLogger("polyhead.access")


def request_id_middleware(app: ASGIApp) -> CorrelationIdMiddleware:
    return CorrelationIdMiddleware(app, header_name=HEADER, validator=is_acceptable_id)


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


class RequestMetrics:
    """Pure ASGI (no BaseHTTPMiddleware overhead): time every request, label by route template.

    With ``access_log`` (default: the ``ACCESS_LOG`` setting, off), also log one line per
    request on the ``polyhead.access`` logger; the request id is on it like on every line."""

    def __init__(self, app: ASGIApp, service: str, access_log: bool | None = None) -> None:
        self.app = app
        self.service = service
        self.access_log = ServiceSettings().access_log if access_log is None else access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            seconds = time.perf_counter() - start
            HTTP_LATENCY.labels(self.service, scope["method"], path, str(status)).observe(seconds)
            if self.access_log:
                client = scope.get("client")
                # The path as a repr: a decoded %0A cannot forge a second log line.
                access_log.info("%s %s %r %d %.1f ms", client[0] if client else "-",
                                scope["method"], scope["path"], status, seconds * 1000)
