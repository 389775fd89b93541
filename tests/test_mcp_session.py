"""Tool results are checked against the tool's output schema, compiled once per schema:
valid results pass, invalid ones and invalid schemas are refused as the MCP SDK does."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp import types

from graph.mcp_session import ValidatingSession

COUNT = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def session_with(schemas: dict[str, Any]) -> ValidatingSession:
    send, receive = anyio.create_memory_object_stream[Any](1)
    session = ValidatingSession(receive, send)  # the streams are never used here
    session._tool_output_schemas.update(schemas)
    return session


def result(structured: dict[str, Any] | None) -> types.CallToolResult:
    return types.CallToolResult(content=[], structuredContent=structured)


async def test_valid_results_pass_and_the_schema_is_compiled_once():
    session = session_with({"count": COUNT})
    for n in range(3):
        await session._validate_tool_result("count", result({"n": n}))
    assert list(session._validators) == ["count"]


async def test_invalid_results_are_refused():
    session = session_with({"count": COUNT})
    with pytest.raises(RuntimeError, match="Invalid structured content returned by tool count"):
        await session._validate_tool_result("count", result({"n": "three"}))
    with pytest.raises(RuntimeError, match="did not return structured content"):
        await session._validate_tool_result("count", result(None))


async def test_an_invalid_schema_is_reported():
    session = session_with({"broken": {"type": "no-such-type"}})
    with pytest.raises(RuntimeError, match="Invalid schema for tool broken"):
        await session._validate_tool_result("broken", result({"n": 1}))


async def test_a_changed_schema_is_compiled_again():
    session = session_with({"count": COUNT})
    await session._validate_tool_result("count", result({"n": 1}))
    session._tool_output_schemas["count"] = {"type": "object", "required": ["total"]}
    with pytest.raises(RuntimeError, match="Invalid structured content"):
        await session._validate_tool_result("count", result({"n": 1}))
