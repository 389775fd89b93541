"""The HTTP service's guards, as pure ASGI middleware (they see SSE streams and bodies that
arrive without Content-Length, which FastAPI dependencies and BaseHTTPMiddleware do not
handle well):

* :class:`BearerAuthMiddleware` (``API_TOKENS``): every request but ``/health`` needs
  ``Authorization: Bearer <token>``; the interactive docs and ``/openapi.json`` are
  protected too. A refused request gets 401 with ``WWW-Authenticate: Bearer`` and the body
  ``{"detail": "missing or invalid bearer token"}``, whatever the reason.
* :class:`BodySizeLimitMiddleware` (``MAX_ALERT_BYTES``): a request body larger than the
  limit gets 413, from its Content-Length before anything is read, or by counting the
  body as it arrives (chunked uploads). The body is read whole (at most the limit) before
  the app runs.
* CORS (``CORS_ORIGINS``): Starlette's middleware for the listed origins only; without
  origins there are no CORS headers at all. Outermost, so that preflight requests (which
  carry no credentials) are answered and 401/413 responses are readable by the page.

:func:`install_security` adds them in that order. :func:`is_loopback_host` decides whether
``sre-agent serve`` may start without ``API_TOKENS`` (see ``server/cli.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Collection, Sequence

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graph.settings import Settings

__all__ = [
    "OPEN_PATHS",
    "BearerAuthMiddleware",
    "BodySizeLimitMiddleware",
    "install_security",
    "is_loopback_host",
]

log = logging.getLogger(__name__)

#: Paths served without a token (liveness probes).
OPEN_PATHS = frozenset({"/health"})
#: Tokens shorter than this are accepted, with a warning at start-up.
MIN_TOKEN_LENGTH = 16
UNAUTHORIZED_DETAIL = "missing or invalid bearer token"


def _path(scope: Scope) -> str:
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path or "/"


class BearerAuthMiddleware:
    """Require ``Authorization: Bearer <token>`` matching one of ``tokens``.

    Tokens are compared as SHA-256 digests with :func:`hmac.compare_digest`, against every
    configured token (no early exit), so timing reveals neither the tokens nor their
    lengths. Paths in ``open_paths`` (exact, after the root path) are not checked.
    """

    def __init__(
        self, app: ASGIApp, *, tokens: Sequence[str], open_paths: Collection[str] = OPEN_PATHS
    ) -> None:
        digests = [hashlib.sha256(t.encode()).digest() for t in tokens if t]
        if not digests:
            raise ValueError("BearerAuthMiddleware needs at least one token")
        self.app = app
        self._digests = digests
        self._open = frozenset(open_paths)

    def _authorized(self, scope: Scope) -> bool:
        values = [v for k, v in scope.get("headers", ()) if k.lower() == b"authorization"]
        if len(values) != 1:
            return False
        scheme, _, credentials = values[0].strip().partition(b" ")
        credentials = credentials.strip()
        if scheme.lower() != b"bearer" or not credentials:
            return False
        given = hashlib.sha256(credentials).digest()
        matched = False
        for digest in self._digests:
            matched |= hmac.compare_digest(given, digest)
        return matched

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] not in ("http", "websocket")
            or _path(scope) in self._open
            or self._authorized(scope)
        ):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        response = JSONResponse(
            {"detail": UNAUTHORIZED_DETAIL},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)


class BodySizeLimitMiddleware:
    """Answer 413 to a request body over ``max_bytes`` bytes, declared or streamed.

    The body is read here (up to the limit) and handed to the app as one message; later
    ``receive`` calls (e.g. SSE waiting for the client to disconnect) reach the server.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.app = app
        self.max_bytes = max_bytes

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body is larger than the {self.max_bytes}-byte limit"},
            status_code=413,
        )
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = [v for k, v in scope.get("headers", ()) if k.lower() == b"content-length"]
        if any(v.strip().isdigit() and int(v) > self.max_bytes for v in declared):
            await self._too_large(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect: nobody to answer
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        pending: list[Message] = [{"type": "http.request", "body": bytes(body), "more_body": False}]

        async def replay() -> Message:
            return pending.pop(0) if pending else await receive()

        await self.app(scope, replay, send)


def install_security(app: FastAPI, settings: Settings) -> None:
    """Add the guards the settings ask for (innermost first: size limit, auth, CORS)."""
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_alert_bytes)
    tokens = [t.get_secret_value() for t in settings.api_tokens if t.get_secret_value()]
    if tokens:
        short = sum(len(t) < MIN_TOKEN_LENGTH for t in tokens)
        if short:
            log.warning(
                "%d of the API_TOKENS are shorter than %d characters; use long random "
                "tokens (e.g. `openssl rand -hex 32`)",
                short,
                MIN_TOKEN_LENGTH,
            )
        app.add_middleware(BearerAuthMiddleware, tokens=tokens)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            allow_credentials=False,  # bearer tokens, no cookies
            expose_headers=["Retry-After"],
        )


def is_loopback_host(host: str) -> bool:
    """Whether binding ``host`` only listens on loopback ("localhost", 127/8, ::1)."""
    name = host.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # another name, "0.0.0.0", "::": may be reachable from elsewhere
