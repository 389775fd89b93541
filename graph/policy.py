"""Which MCP tools an agent may use: decided by the client, before a tool reaches the
model, from the tool's MCP annotations and the server's allow/deny patterns. The default
is read-only tools only — whatever flags the server itself was started with."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from langchain_core.tools import BaseTool

from graph.config import MCPServerConfig

BLOCKED = "Error: tool '{name}' is blocked by the {server} server's policy: {reason}."


def blocked_reason(tool: BaseTool, config: MCPServerConfig) -> str | None:
    """None when the tool may be used, else why not."""
    name = tool.name
    if any(fnmatchcase(name, pattern) for pattern in config.deny):
        return "denied by configuration"
    if any(fnmatchcase(name, pattern) for pattern in config.allow):
        return None
    hints: dict[str, Any] = tool.metadata or {}
    if config.read_only:
        if hints.get("readOnlyHint") is True:
            return None
        return "not annotated read-only (readOnlyHint), and the server is read-only"
    if hints.get("destructiveHint") is True or (
        hints.get("destructiveHint") is None and hints.get("readOnlyHint") is not True
    ):
        return "may be destructive (destructiveHint); allow it by name to use it"
    return None
