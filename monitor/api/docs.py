"""`/docs`: Swagger UI from the assets of an installed package (fastapi-offline ships
Swagger UI 5, which reads OpenAPI 3.1), served by Vigil itself, so the docs work on a
network that cannot reach a CDN. Only the three files the page loads are served, and
they are open like the page (auth.py OPEN_PATHS).
"""
from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse

ASSET_DIR = Path(fastapi_offline.__file__).parent / "static"
ASSET_PREFIX = "/docs/assets/"
ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css", "favicon.png": "image/png"}
ASSET_PATHS = frozenset(ASSET_PREFIX + name for name in ASSETS)
OAUTH2_REDIRECT = "/docs/oauth2-redirect"

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def docs(request: Request) -> HTMLResponse:
    # Behind a proxy that mounts the API under a prefix, every URL the page loads needs it.
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return get_swagger_ui_html(openapi_url=f"{root}/openapi.json", title="Vigil API",
                               swagger_js_url=f"{root}{ASSET_PREFIX}swagger-ui-bundle.js",
                               swagger_css_url=f"{root}{ASSET_PREFIX}swagger-ui.css",
                               swagger_favicon_url=f"{root}{ASSET_PREFIX}favicon.png",
                               oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT}")


@router.get(OAUTH2_REDIRECT)
def oauth2_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get(ASSET_PREFIX + "{name}")
def asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise HTTPException(404, f"no docs asset {name!r}")
    return FileResponse(ASSET_DIR / name, media_type=ASSETS[name])
