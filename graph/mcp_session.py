"""How a session to one MCP server is opened: over stdio (graph/mcp_stdio.py: the
server's stderr to a log file, its end noticed at once) or HTTP, as a session that checks
tool results against compiled output schemas.

The MCP SDK validates a tool's structured result against the tool's output schema on
every call, and its `jsonschema.validate` checks the schema itself against the
meta-schema each time first: with many calls in flight that was the largest single cost
of a tool call on our side. `ValidatingSession` checks each schema once and keeps the
compiled validator; what is accepted and refused stays the SDK's.

The HTTP transports are opened here too (as langchain-mcp-adapters opens them, with its
default timeouts) so that they get the same session class. jsonschema and the HTTP
clients are imported on first use: the CLI's start-up time matters."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp import ClientSession, StdioServerParameters, types
from mcp.shared.message import SessionMessage

from graph.config import MCPServerConfig
from graph.mcp_stdio import Incoming, stdio_server

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

HTTP_TIMEOUT = timedelta(seconds=30)
"""Seconds an HTTP request to the server may take to start answering."""
SSE_READ_TIMEOUT = timedelta(minutes=5)
"""Seconds an event stream may stay silent."""


class ValidatingSession(ClientSession):
    """A `ClientSession` that compiles each tool's output schema once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._validators: dict[str, tuple[dict[str, Any], Validator]] = {}

    async def _validate_tool_result(self, name: str, result: types.CallToolResult) -> None:
        schema = self._tool_output_schemas.get(name)
        if schema is None:  # not listed yet, or no output schema: the SDK's own handling
            await super()._validate_tool_result(name, result)
            return
        if result.structuredContent is None:
            raise RuntimeError(
                f"Tool {name} has an output schema but did not return structured content"
            )
        from jsonschema.exceptions import best_match

        error = best_match(self._validator(name, schema).iter_errors(result.structuredContent))
        if error is not None:
            raise RuntimeError(f"Invalid structured content returned by tool {name}: {error}")

    def _validator(self, name: str, schema: dict[str, Any]) -> Validator:
        cached = self._validators.get(name)
        if cached is not None and cached[0] is schema:
            return cached[1]
        from jsonschema import SchemaError
        from jsonschema.validators import validator_for
        from referencing import Registry

        cls = validator_for(schema)
        try:
            cls.check_schema(schema)
        except SchemaError as exc:
            raise RuntimeError(f"Invalid schema for tool {name}: {exc}") from exc
        # An empty registry, as the SDK uses: `$ref`s resolve within the schema only.
        validator: Validator = cls(schema, registry=Registry())
        self._validators[name] = (schema, validator)
        return validator


@contextlib.asynccontextmanager
async def open_http_session(
    transport: str, url: str, headers: dict[str, str]
) -> AsyncIterator[ClientSession]:
    """A session (not yet initialized) over streamable HTTP or SSE."""
    import httpx
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

    if transport == "streamable_http":
        client = create_mcp_http_client(
            headers=headers,
            timeout=httpx.Timeout(
                HTTP_TIMEOUT.total_seconds(), read=SSE_READ_TIMEOUT.total_seconds()
            ),
        )
        async with (
            client,
            streamable_http_client(url, http_client=client) as (read, write, _),
            ValidatingSession(read, write) as session,
        ):
            yield session
    elif transport == "sse":
        async with (
            sse_client(
                url,
                headers,
                HTTP_TIMEOUT.total_seconds(),
                SSE_READ_TIMEOUT.total_seconds(),
            ) as (read, write),
            ValidatingSession(read, write) as session,
        ):
            yield session
    else:
        raise ValueError(f"not an HTTP transport: {transport!r}")


@contextlib.asynccontextmanager
async def open_session(
    name: str, config: MCPServerConfig, lost: asyncio.Event, *, log_dir: Path | None
) -> AsyncIterator[ClientSession]:
    """An initialized session to server `name` (`config` resolved); `lost` is set when a
    stdio server's output ends, so a crash is noticed even between calls. A stdio server's
    stderr goes to `log_dir/mcp-<name>.log` (nowhere without `log_dir`)."""
    if config.transport != "stdio":
        assert config.url is not None
        async with open_http_session(config.transport, config.url, dict(config.headers)) as session:
            await session.initialize()
            yield session
        return
    assert config.command is not None
    params = StdioServerParameters(
        command=config.command,
        args=list(config.args),
        env=config.child_env(),
        cwd=config.cwd,
    )
    with _errlog(name, log_dir) as errlog:
        async with stdio_server(params, errlog, lost) as (output, input_):
            session = ValidatingSession(
                cast("MemoryObjectReceiveStream[Incoming]", output),
                cast("MemoryObjectSendStream[SessionMessage]", input_),
            )
            async with session:
                await session.initialize()
                yield session


@contextlib.contextmanager
def _errlog(name: str, log_dir: Path | None) -> Iterator[TextIO]:
    """The server's stderr goes to a log file, never over the user's terminal."""
    handle: TextIO
    if log_dir is None:
        handle = open(  # noqa: SIM115 - closed below
            "/dev/null", "w"
        )
    else:
        log_dir.mkdir(parents=True, exist_ok=True)
        handle = (log_dir / f"mcp-{name}.log").open("a")
    try:
        yield handle
    finally:
        handle.close()
