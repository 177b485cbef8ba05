"""polyhead's error types. They know nothing of HTTP: :mod:`shared.web.errors` maps each to a
status code, and a command-line tool or a worker raises and catches them the same way."""

from __future__ import annotations


class PolyheadError(Exception):
    """Base class: ``message`` is safe to show to the caller."""

    def __init__(self, message: str, *, param: str | None = None,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.retry_after_s = retry_after_s


class InvalidInput(PolyheadError):
    """The request is well-formed JSON but breaks a rule (empty text, too many texts...)."""


class PayloadTooLarge(PolyheadError):
    """The body is over the service's byte limit."""


class NotFound(PolyheadError):
    """An unknown model, job, version..."""


class Unauthorized(PolyheadError):
    """No API key, or an unknown or revoked one."""


class Forbidden(PolyheadError):
    """A valid API key without the scope the route needs."""


class Conflict(PolyheadError):
    """The request clashes with the current state (nothing to roll back to...)."""


class Overloaded(PolyheadError):
    """The queue is full: come back after ``Retry-After`` seconds."""


class Unavailable(PolyheadError):
    """Not ready yet, or a dependency is down."""
