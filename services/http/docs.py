"""The OpenAPI documentation pages of the HTTP services, served without a CDN (CONTRACT §14).

FastAPI's ``/docs`` and ``/redoc`` load their scripts and styles from public CDNs, so on a machine without
internet access (a government network) they show nothing. Here ``/docs`` is Swagger UI from the
``swagger-ui-bundle`` package (Apache-2.0), its three files served by the service itself under ``/docs/static``; ReDoc
(which no package ships) is not offered. The OpenAPI document stays at ``/openapi.json``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

__all__ = ["DOCS_PATH", "STATIC_PATH", "serve_docs"]

DOCS_PATH: Final = "/docs"
STATIC_PATH: Final = "/docs/static"
ASSETS: Final = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
"""The only files served: the package's folder holds more (a demo page that fetches from the internet)."""


def _asset(path: Path, media_type: str) -> Callable[[], Awaitable[FileResponse]]:
    async def asset() -> FileResponse:
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})

    return asset


def serve_docs(app: FastAPI) -> None:
    """``/docs`` for ``app`` from local files: create the app with ``docs_url=None, redoc_url=None``."""
    if app.docs_url is not None or app.redoc_url is not None:
        raise ValueError("create the FastAPI app with docs_url=None and redoc_url=None: serve_docs replaces them")
    folder = Path(swagger_ui_bundle.swagger_ui_path)
    for name, media_type in ASSETS.items():
        app.add_api_route(
            f"{STATIC_PATH}/{name}", _asset(folder / name, media_type), methods=["GET"], include_in_schema=False
        )
    title = f"{app.title} — API"

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=title,
            swagger_js_url=f"{STATIC_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_PATH}/favicon-32x32.png",
        )
