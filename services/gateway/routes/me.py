"""``GET /v1/me``: who the caller's key belongs to and what it may do.

Any valid key may ask. The console signs in with it, and offers only what the key's scopes
allow; scripts can check a key the same way before using it.
"""

from __future__ import annotations

from fastapi import APIRouter

from services.gateway.deps import AnyClient
from shared.contracts.gateway import KeyInfo
from shared.web.app import error_responses

router = APIRouter(tags=["keys"], responses=error_responses(401))


@router.get("/v1/me", response_model=KeyInfo)
def me(client: AnyClient) -> KeyInfo:
    """The key's name and scopes (any valid key; 401 for a missing, unknown or revoked one).

    ```
    curl -s localhost:8000/v1/me -H "Authorization: Bearer $KEY"
    # {"name": "polyhead-up", "scopes": ["admin", "predict"]}
    ```
    With ``GATEWAY_AUTH=false`` every caller is ``anonymous`` with both scopes.
    """
    return KeyInfo(name=client.name, scopes=sorted(client.scopes))
