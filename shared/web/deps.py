"""FastAPI dependencies every service may use."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request
from pydantic import SecretStr

from shared.errors import Unauthorized
from shared.internal_auth import ENV_NAME


def _require_internal_token(request: Request,
                            authorization: Annotated[str | None, Header()] = None) -> None:
    """A dependency: 401 unless the caller sent the app's internal token (when it has one).

    The app keeps its token in ``app.state.internal_token``. The comparison is
    :func:`hmac.compare_digest`, so its time does not depend on how much of the token matched.
    """
    token: SecretStr | None = request.app.state.internal_token
    if token is None:
        return
    scheme, _, sent = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
            sent.strip().encode(), token.get_secret_value().encode()):
        raise Unauthorized("this internal route needs Authorization: Bearer "
                           f"<{ENV_NAME}>")


InternalToken = Depends(_require_internal_token)
