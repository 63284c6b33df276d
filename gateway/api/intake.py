"""What a request must show before the API reads its body: a valid token, and a bounded size.

FastAPI reads and parses a body before it resolves the dependencies that check the token, and
reads all of it: without these, anyone could make the gateway hold a body of any size. Both
are plain ASGI middleware, so they act on the byte stream, before any parsing.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio.to_thread
from fastapi import HTTPException, status
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.service import Gateway
from gateway.store import profile_links
from gateway.store.tokens import identity_of

# A member's own pages: their token is a profile link's, not an API token.
MEMBER_PATHS = "/me/"

MISSING_TOKEN = "missing bearer token: send 'Authorization: Bearer <token>'"  # noqa: S105
INVALID_TOKEN = "invalid, expired or revoked token"  # noqa: S105 - a message, not a secret


def _has_body(headers: Headers) -> bool:
    return headers.get("content-length", "0") != "0" or "transfer-encoding" in headers


def _declared_length(headers: Headers) -> int | None:
    try:
        return int(headers["content-length"])
    except (KeyError, ValueError):
        return None


def _unauthorized(detail: str) -> JSONResponse:
    return JSONResponse(
        {"detail": detail},
        status_code=status.HTTP_401_UNAUTHORIZED,
        headers={"WWW-Authenticate": "Bearer"},
    )


class TokenFirst:
    """Answer 401 to a request with a body and no valid token, without reading the body.

    Requests without a body go on: the routers' own token check answers them as before. The
    token of a request with a body is thus looked up twice, by its hash's unique index.
    """

    def __init__(self, app: ASGIApp, gateway: Callable[[], Gateway]) -> None:
        self.app = app
        self._gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            if _has_body(headers):
                refusal = await self._refusal(headers.get("authorization"), scope["path"])
                if refusal is not None:
                    await _unauthorized(refusal)(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _refusal(self, authorization: str | None, path: str) -> str | None:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return MISSING_TOKEN
        store = self._gateway().store

        def check() -> bool:
            with store.new_session() as session:
                if path.startswith(MEMBER_PATHS):
                    return profile_links.member_of(session, token.strip()) is not None
                return identity_of(session, token.strip()) is not None

        return None if await anyio.to_thread.run_sync(check) else INVALID_TOKEN


class BodyLimit:
    """Refuse a request body over ``max_bytes`` with 413: by its Content-Length before reading
    any of it, and, for a chunked body, as soon as the bytes read pass the bound."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(Headers(scope=scope))
        if declared is not None and declared > self.max_bytes:
            response = JSONResponse(
                {"detail": self._too_large(f"is {declared} bytes")},
                status_code=status.HTTP_413_CONTENT_TOO_LARGE,
            )
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # An HTTPException, so that FastAPI answers it as it is, not as a 400
                    # "error parsing the body".
                    raise HTTPException(
                        status.HTTP_413_CONTENT_TOO_LARGE,
                        self._too_large(f"passed {self.max_bytes} bytes"),
                    )
            return message

        await self.app(scope, counted, send)

    def _too_large(self, size: str) -> str:
        return (
            f"the request body {size}; the limit is {self.max_bytes} bytes "
            "(VARCO_API_MAX_BODY_BYTES)"
        )
