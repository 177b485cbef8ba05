"""The one table that maps polyhead's error types (:mod:`shared.errors`) to HTTP answers, and
the handlers every app installs.

Handlers answer OpenAI-shaped bodies (``{"error": {...}}``). Unexpected exceptions are logged
with their stack and answered with a generic 500 naming the request id, never the exception text.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from shared.contracts.errors import ErrorDetail, ErrorResponse
from shared.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    PolyheadError,
    Unauthorized,
    Unavailable,
)
from shared.messages import describe
from shared.request_id import current_request_id
from shared.web.responses import JSONBytes

log = logging.getLogger(__name__)

# The one table: error type -> (HTTP status, OpenAI error type).
ERROR_TABLE: dict[type[PolyheadError], tuple[int, str]] = {
    InvalidInput: (422, "invalid_request_error"),
    PayloadTooLarge: (413, "invalid_request_error"),
    Unauthorized: (401, "authentication_error"),
    Forbidden: (403, "permission_error"),
    NotFound: (404, "not_found_error"),
    Conflict: (409, "conflict_error"),
    Overloaded: (429, "rate_limit_error"),
    Unavailable: (503, "service_unavailable"),
}


def status_for(exc: PolyheadError) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]
    return 500, "server_error"


def error_response(status: int, type_: str, message: str, *, param: str | None = None,
                   code: str | None = None, headers: Mapping[str, str] | None = None
                   ) -> JSONBytes:
    body = ErrorResponse(error=ErrorDetail(message=message, type=type_, param=param, code=code,
                                           request_id=current_request_id()))
    return JSONBytes(body.model_dump(), status_code=status, headers=headers)


async def _polyhead_error(_: Request, exc: Exception) -> JSONBytes:
    assert isinstance(exc, PolyheadError)
    status, type_ = status_for(exc)
    headers = None
    if exc.retry_after_s is not None:
        headers = {"Retry-After": str(max(1, round(exc.retry_after_s)))}
    return error_response(status, type_, exc.message, param=exc.param, headers=headers)


async def _validation_error(_: Request, exc: Exception) -> JSONBytes:
    assert isinstance(exc, RequestValidationError)
    message, param = describe(exc.errors(), exc.body)
    return error_response(422, "invalid_request_error", message, param=param)


async def _http_error(_: Request, exc: Exception) -> JSONBytes:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400:  # FastAPI's answer to a body it cannot decode (not UTF-8...)
        return error_response(422, "invalid_request_error", "the request body could not be "
                              "parsed: send UTF-8 JSON (or the form the route documents)",
                              param="body")
    type_ = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    return error_response(exc.status_code, type_, str(exc.detail), headers=exc.headers)


async def _database_down(_: Request, exc: Exception) -> JSONBytes:
    """A lost or refused database connection, a statement cancelled by its timeout or no free
    connection in the pool is a dependency outage: 503 with Retry-After, not a 500."""
    log.warning("database unavailable: %s", str(exc).splitlines()[0][:300])
    return error_response(503, "service_unavailable",
                          "the database is unavailable; retry shortly",
                          headers={"Retry-After": "5"})


async def _unexpected(_: Request, exc: Exception) -> JSONBytes:
    log.exception("unhandled error", exc_info=exc)
    # Answered outside the request-id middleware: the id goes in the header here.
    request_id = current_request_id()
    return error_response(500, "server_error",
                          "internal error; the request id identifies it in the service logs",
                          headers={"X-Request-ID": request_id} if request_id else None)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PolyheadError, _polyhead_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(sqlalchemy.exc.OperationalError, _database_down)
    app.add_exception_handler(sqlalchemy.exc.InterfaceError, _database_down)
    app.add_exception_handler(sqlalchemy.exc.TimeoutError, _database_down)  # no free connection
    app.add_exception_handler(Exception, _unexpected)
