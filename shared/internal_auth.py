"""The internal token: the credential of internal routes that change state.

The trainer's training, promote and rollback routes answer only callers that send
``Authorization: Bearer <POLYHEAD_INTERNAL_TOKEN>``; the gateway's admin proxy and the
``polyhead`` command line send it. Settings refuse to start in prod without a token; in dev and
test with none set, the routes are open (``polyhead up`` on one machine, the tests). The
NetworkPolicies in ``deploy/k8s/networkpolicy.yaml`` are the second wall.
"""

from __future__ import annotations

import hmac
import os
from typing import Annotated

from fastapi import Depends, Header, Request
from pydantic import SecretStr

from shared.errors import Unauthorized

ENV_NAME = "POLYHEAD_INTERNAL_TOKEN"


def internal_headers(token: SecretStr | str | None) -> dict[str, str]:
    """The header that carries ``token``; none when there is no token."""
    if isinstance(token, SecretStr):
        token = token.get_secret_value()
    return {"Authorization": f"Bearer {token}"} if token else {}


def env_internal_headers() -> dict[str, str]:
    """The header for the token in ``POLYHEAD_INTERNAL_TOKEN`` (command-line clients)."""
    return internal_headers(os.environ.get(ENV_NAME))


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
