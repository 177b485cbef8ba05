"""The API docs every service serves: ``/docs`` (Swagger UI) and ``/redoc``, from files that
ship in the ``fastapi-offline`` package (no CDN: the pages work on a machine with no internet),
and the bearer scheme in the OpenAPI, so Swagger UI's Authorize button sends the key.

An operation documented to answer 401 takes ``Authorization: Bearer ...``: an API key at the
gateway, ``POLYHEAD_INTERNAL_TOKEN`` at the trainer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs-assets"
BEARER = {"bearer": {"type": "http", "scheme": "bearer",
                     "description": "an API key at the gateway (polyhead keys create); "
                                    "POLYHEAD_INTERNAL_TOKEN at the trainer"}}


def install_api_docs(app: FastAPI, *, serve: bool) -> None:
    """Declare the bearer scheme; with ``serve``, also serve /docs, /redoc and their assets.
    The app is built with ``docs_url=None, redoc_url=None``."""
    app.openapi = lambda: _openapi_with_bearer(app)  # type: ignore[method-assign] # FastAPI's documented hook
    if not serve:
        return
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=redirect_url,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png")

    @app.get(redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url, title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
                              redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
                              with_google_fonts=False)


def _openapi_with_bearer(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema (built once, cached on the app), with the bearer scheme on every
    operation that may answer 401."""
    if app.openapi_schema is None:
        schema = FastAPI.openapi(app)
        secured = [operation for path in schema.get("paths", {}).values()
                   for operation in path.values() if "401" in operation.get("responses", {})]
        for operation in secured:
            operation.setdefault("security", [{"bearer": []}])
        if secured:
            schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(BEARER)
    return app.openapi_schema  # type: ignore[return-value] # set by FastAPI.openapi above
