"""How an MCP server fails, put in words: the error a tool call raises when its server is
down, whether a failed call means the session itself died (the server is then restarted
and the call retried) or only that the tool failed, and a one-line description of a
failure for logs, events and /health."""

from __future__ import annotations

import anyio
import httpx
from mcp import McpError
from mcp.types import CONNECTION_CLOSED


class ServerUnavailable(Exception):
    """A tool call could not be made: its server is down (or went down during the call)."""

    def __init__(self, server: str, reason: str) -> None:
        super().__init__(f"MCP server {server} is unavailable: {reason}")
        self.server, self.reason = server, reason


class SessionLost(Exception):
    """The session a call ran on ended before the call was answered."""


def describe_error(exc: BaseException) -> str:
    """One line for a server failure, digging through exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, FileNotFoundError):
        return (
            f"command not found: {exc.filename or exc} (`make install` installs the MCP "
            "servers the project ships: npm ci, pip install -e '.[mcp-servers]')"
        )
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def connection_lost(exc: BaseException) -> bool:
    """Whether a failed call means the session itself died (process exited, connection
    broken, HTTP session forgotten by a restarted server), not that the tool failed."""
    if isinstance(exc, BaseExceptionGroup):
        return any(connection_lost(e) for e in exc.exceptions)
    if isinstance(exc, SessionLost):
        return True
    if isinstance(exc, McpError):
        error = exc.error
        closed = error.code == CONNECTION_CLOSED and error.message == "Connection closed"
        return closed or error.message == "Session terminated"
    return isinstance(
        exc,
        (
            anyio.ClosedResourceError,
            anyio.BrokenResourceError,
            anyio.EndOfStream,
            httpx.TransportError,
        ),
    )
