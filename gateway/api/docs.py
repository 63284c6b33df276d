"""``/docs`` served whole by the gateway: no CDN, so it works offline.

Door controllers and gateways often sit on networks that do not reach the internet; FastAPI's
own page loads Swagger UI from a CDN and stays blank there. The assets come from the
``fastapi-offline`` package (Swagger UI 5, which reads OpenAPI 3.1), served from the gateway
under ``/docs/static``. ReDoc is not served: even bundled, it fetches its logo from a CDN.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import (
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = "/docs/static"
ASSETS = files("fastapi_offline") / "static"

router = APIRouter(include_in_schema=False)


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", ""))


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    root, app = _root(request), request.app
    return get_swagger_ui_html(
        openapi_url=f"{root}{app.openapi_url}",
        title=f"{app.title} - API",
        oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
        swagger_js_url=f"{root}{STATIC}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{STATIC}/swagger-ui.css",
        swagger_favicon_url=f"{root}{STATIC}/favicon.png",
        # Keep the token across reloads: an admin pastes it once per browser tab.
        swagger_ui_parameters={"persistAuthorization": True},
    )


@router.get("/docs/oauth2-redirect")
def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


def install(app: FastAPI) -> None:
    """Serve the API's documentation pages and their assets from ``app`` itself."""
    app.include_router(router)
    app.mount(STATIC, StaticFiles(directory=str(ASSETS)), name="docs-static")
