"""Models, their versions and the production alias: read with any valid key, moved with an
admin one."""

from __future__ import annotations

from fastapi import APIRouter

from services.gateway.deps import AdminClient, AnyClient, RegistryDep
from shared.contracts.training import (
    AliasMove,
    ModelInfo,
    ModelInfoList,
    PromoteRequest,
    RollbackRequest,
)
from shared.web.app import error_responses

router = APIRouter(responses=error_responses(401, 403, 404, 409))


@router.get("/v1/models", response_model=ModelInfoList, tags=["models"])
def list_models(registry: RegistryDep, client: AnyClient) -> ModelInfoList:
    """Every model with its versions, metrics and which version is in production (any valid
    key: the console's Models page lists them for predict and admin keys alike).

    ```
    curl -s localhost:8000/v1/models -H "Authorization: Bearer $KEY"
    ```
    """
    return ModelInfoList(data=registry.list_models())


@router.get("/v1/models/{name}", response_model=ModelInfo, tags=["models"])
def get_model(name: str, registry: RegistryDep, client: AnyClient) -> ModelInfo:
    return registry.model(name)


@router.post("/v1/models/{name}/promote", response_model=AliasMove, tags=["admin"])
def promote(name: str, body: PromoteRequest, registry: RegistryDep,
            client: AdminClient) -> AliasMove:
    """Point ``production`` at a version (admin); classifiers serve it within seconds."""
    return registry.promote(name, body.version, actor=client.name, reason=body.reason)


@router.post("/v1/models/{name}/rollback", response_model=AliasMove, tags=["admin"])
def rollback(name: str, registry: RegistryDep, client: AdminClient,
             body: RollbackRequest | None = None) -> AliasMove:
    """Move ``production`` back to the previous version (admin)."""
    return registry.rollback(name, actor=client.name, reason=body.reason if body else "")
