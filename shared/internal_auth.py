"""The internal token: the credential of internal routes that change state.

The trainer's training, promote and rollback routes answer only callers that send
``Authorization: Bearer <POLYHEAD_INTERNAL_TOKEN>`` (the dependency
:data:`shared.web.deps.InternalToken`); the gateway's admin proxy and the ``polyhead`` command
line send it. Settings refuse to start in prod without a token; in dev and test with none set,
the routes are open (``polyhead up`` on one machine, the tests). The NetworkPolicies in
``deploy/k8s/networkpolicy.yaml`` are the second wall.
"""

from __future__ import annotations

import os

from pydantic import SecretStr

ENV_NAME = "POLYHEAD_INTERNAL_TOKEN"


def internal_headers(token: SecretStr | str | None) -> dict[str, str]:
    """The header that carries ``token``; none when there is no token."""
    if isinstance(token, SecretStr):
        token = token.get_secret_value()
    return {"Authorization": f"Bearer {token}"} if token else {}


def env_internal_headers() -> dict[str, str]:
    """The header for the token in ``POLYHEAD_INTERNAL_TOKEN`` (command-line clients)."""
    return internal_headers(os.environ.get(ENV_NAME))
