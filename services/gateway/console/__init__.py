"""The console at ``/console``: pages for the people who own the classifiers.

Static files only (``static/``): a page and small JavaScript modules that call the public
``/v1`` API with the API key the person signs in with, exactly as scripts do, so everything
the console shows is available to programs too. The key stays in the browser tab's
``sessionStorage``. Every asset ships in this package (no CDN) and every answer carries a
strict Content-Security-Policy: scripts and styles from this origin only, no inline code, no
request to another origin.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Response

from shared.errors import NotFound

STATIC = Path(__file__).parent / "static"
_MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
ASSETS = {path.name: _MEDIA_TYPES[path.suffix] for path in STATIC.iterdir()
          if path.suffix in _MEDIA_TYPES}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)


@router.get("/console")
def console() -> Response:
    """The console's one page; the pages within it are ``#/...`` routes of ``app.js``."""
    return _asset("index.html")


@router.get("/console/{name}")
def asset(name: str) -> Response:
    """A script, style sheet or image of the console (only the files in ``static/``)."""
    return _asset(name)


def _asset(name: str) -> Response:
    if name not in ASSETS:
        raise NotFound(f"no console file {name[:64]!r}")
    return Response((STATIC / name).read_bytes(), media_type=ASSETS[name], headers=HEADERS)
