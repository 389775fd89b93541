"""The read-only tool policy: annotations, allow and deny patterns."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.tools import StructuredTool

from graph.config import MCPServerConfig
from graph.policy import blocked_reason


def tool(name: str, **hints: Any) -> StructuredTool:
    return StructuredTool.from_function(
        lambda: "", name=name, description=name, metadata=hints or None
    )


def server(**values: Any) -> MCPServerConfig:
    return MCPServerConfig(command="x", **values)


@pytest.mark.parametrize(
    ("hints", "allowed"),
    [
        ({"readOnlyHint": True}, True),
        ({"readOnlyHint": False, "destructiveHint": True}, False),
        ({"readOnlyHint": False, "destructiveHint": False}, False),
        ({}, False),
    ],
)
def test_read_only_by_default(hints: dict[str, Any], allowed: bool):
    assert (blocked_reason(tool("t", **hints), server()) is None) is allowed


def test_deny_wins_over_read_only_annotation():
    reason = blocked_reason(tool("secrets_get", readOnlyHint=True), server(deny=["secrets_*"]))
    assert reason == "denied by configuration"


def test_allow_lets_a_named_tool_through_a_read_only_server():
    assert (
        blocked_reason(tool("pods_exec", destructiveHint=True), server(allow=["pods_exec"])) is None
    )


def test_non_read_only_server_still_refuses_destructive_tools_unless_allowed():
    config = server(read_only=False)
    assert blocked_reason(tool("scale", readOnlyHint=False, destructiveHint=False), config) is None
    assert "destructive" in (blocked_reason(tool("delete", destructiveHint=True), config) or "")
    assert "destructive" in (blocked_reason(tool("unknown"), config) or "")
