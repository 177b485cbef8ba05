"""Structured logging: one JSON object per line, with the request id on every record."""

from __future__ import annotations

import logging
import sys

from asgi_correlation_id import CorrelationIdFilter
from pythonjsonlogger.json import JsonFormatter

_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s"


class _RequestIdFilter(CorrelationIdFilter):
    """Expose the id as ``request_id`` (the name used across polyhead)."""

    def filter(self, record: logging.LogRecord) -> bool:
        super().filter(record)
        record.request_id = record.__dict__.pop("correlation_id", None)
        record.__dict__.pop("color_message", None)  # uvicorn's ANSI copy of the message
        return True


def configure_logging(service: str, level: str = "INFO", json: bool = True) -> None:
    """Route the root logger (and uvicorn's) to stdout, as JSON unless ``json`` is off."""
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_RequestIdFilter())
    if json:
        handler.setFormatter(JsonFormatter(_FIELDS, rename_fields={"levelname": "level",
                                                                   "name": "logger"},
                                           static_fields={"service": service}))
    else:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)-7s [%(request_id)s] %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "gunicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Access logs cost more than the request on the hot path; request metrics cover them.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every outgoing request at INFO: one line per hop per prediction.
    logging.getLogger("httpx").setLevel(logging.WARNING)
