"""MCP client sessions whose tool results are checked against compiled output schemas.

The MCP SDK validates a tool's structured result against the tool's output schema on
every call, and its `jsonschema.validate` checks the schema itself against the
meta-schema each time first: with many calls in flight that was the largest single cost
of a tool call on our side. `ValidatingSession` checks each schema once and keeps the
compiled validator; what is accepted and refused stays the SDK's.

The HTTP transports are opened here too (as langchain-mcp-adapters opens them, with its
default timeouts) so that they get the same session class. jsonschema and the HTTP
clients are imported on first use: the CLI's start-up time matters."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from mcp import ClientSession, types

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
