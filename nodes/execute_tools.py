"""`execute_tools`: run the iteration's tool calls concurrently through the MCP sessions.

Keeps ToolNode's contract: a failing tool becomes an error result the model can read; a
tool outside the agent's servers is refused with the list of valid names."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from langgraph.errors import GraphBubbleUp
from langgraph.runtime import Runtime

from graph.context import Context
from graph.events import EventType, emit, now_iso
from graph.policy import BLOCKED
from graph.state import AgentState, ToolCallRecord

UNKNOWN_TOOL = "Error: tool '{name}' is not available to the {agent} agent. Valid tools: {valid}."
TOOL_FAILED = "Error: {tool} failed: {error}"
TOOL_TIMEOUT = "Error: {tool} did not answer within {timeout:g}s."
TRUNCATED = "\n[output truncated: showing {shown} of {total} bytes]"


def content_text(content: Any) -> str:
    """MCP results arrive as content blocks; keep their text, JSON for anything else."""
    if isinstance(content, str):
        return content
    parts = []
    for block in content if isinstance(content, list) else [content]:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        else:
            parts.append(json.dumps(block, default=str))
    return "\n".join(parts)


def cap(text: str, limit: int) -> tuple[str, int, bool]:
    """Cut `text` to `limit` UTF-8 bytes with a marker saying how much was cut."""
    data = text.encode()
    if len(data) <= limit:
        return text, len(data), False
    shown = data[:limit].decode(errors="ignore")
    return shown + TRUNCATED.format(shown=len(shown.encode()), total=len(data)), len(data), True


async def _run_one(call: dict[str, Any], tool: BaseTool, limit: float) -> tuple[str, str]:
    try:
        async with asyncio.timeout(limit):
            message = await tool.ainvoke(
                {"type": "tool_call", "name": call["name"], "args": call["args"], "id": call["id"]}
            )
    except GraphBubbleUp:
        raise
    except TimeoutError:
        return "error", TOOL_TIMEOUT.format(tool=call["name"], timeout=limit)
    except Exception as exc:  # the model reads the failure and can adapt
        return "error", TOOL_FAILED.format(tool=call["name"], error=f"{type(exc).__name__}: {exc}")
    if isinstance(message, ToolMessage):
        text = content_text(message.content)
        return ("error" if message.status == "error" else "ok"), text
    return "ok", content_text(message)


async def execute_tools(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = runtime.context
    spec = ctx.registry.agents[state["agent"]]
    iteration = state["iteration"]
    tools = ctx.toolbox.tools_for(spec.mcp_servers)
    writer = runtime.stream_writer

    async def run(n: int, call: dict[str, Any]) -> ToolCallRecord:
        ref = f"T{iteration}.{n}"
        entry = tools.get(call["name"])
        server = entry[0] if entry else None
        emit(
            writer,
            EventType.TOOL_CALL_STARTED,
            agent=spec.name,
            iteration=iteration,
            step="execute_tools",
            ref=ref,
            tool=call["name"],
            server=server,
            args=call["args"],
        )
        started, clock = now_iso(), time.perf_counter()
        blocked = ctx.toolbox.blocked_for(spec.mcp_servers).get(call["name"])
        masked = 0
        if entry is None and blocked is not None:
            status, server = "blocked", blocked[0]
            text = BLOCKED.format(name=call["name"], server=blocked[0], reason=blocked[1])
        elif entry is None:
            status = "refused"
            text = UNKNOWN_TOOL.format(
                name=call["name"], agent=spec.name, valid=", ".join(sorted(tools)) or "none"
            )
        else:
            status, text = await _run_one(call, entry[1], ctx.tool_timeout)
            masker = ctx.toolbox.masker_for(entry[0])
            if masker is not None:
                text, masked = masker.mask_text(text)
        content, size, truncated = cap(text, ctx.tool_output_max_bytes)
        record: ToolCallRecord = {
            "ref": ref,
            "id": call["id"],
            "iteration": iteration,
            "server": server,
            "tool": call["name"],
            "args": call["args"],
            "status": status,  # type: ignore[typeddict-item]
            "started_at": started,
            "duration_ms": round((time.perf_counter() - clock) * 1000, 3),
            "size": size,
            "truncated": truncated,
            "masked": masked,
            "content": content,
        }
        emit(
            writer,
            EventType.TOOL_CALL_FINISHED,
            agent=spec.name,
            iteration=iteration,
            step="execute_tools",
            ref=ref,
            tool=call["name"],
            server=server,
            status=status,
            duration_ms=record["duration_ms"],
            size=size,
            truncated=truncated,
            masked=masked,
        )
        return record

    results = await asyncio.gather(*(run(n, c) for n, c in enumerate(state["pending"], 1)))
    log = [{k: v for k, v in r.items() if k != "content"} for r in results]
    return {"results": list(results), "tool_calls": log, "pending": []}
