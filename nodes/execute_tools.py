"""`execute_tools`: run the iteration's tool calls concurrently through the MCP sessions.

Keeps ToolNode's contract: a failing tool becomes an error result the model can read; a
tool outside the agent's servers is refused with the list of valid names. A server that
crashes under a call is restarted once and the call retried (by the toolbox); one that stays
down turns the call into an error result and the run goes on `degraded`."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from langchain_core.messages import ToolMessage
from langgraph.errors import GraphBubbleUp
from langgraph.runtime import Runtime

from graph.context import Context
from graph.events import EventType, emit, now_iso
from graph.policy import BLOCKED
from graph.state import AgentState, ToolCallRecord
from graph.toolbox import ServerUnavailable, Toolbox

UNKNOWN_TOOL = "Error: tool '{name}' is not available to the {agent} agent. Valid tools: {valid}."
TOOL_FAILED = "Error: {tool} failed: {error}"
TOOL_TIMEOUT = "Error: {tool} did not answer within {timeout:g}s."
SERVER_DOWN = (
    "Error: {tool} could not run: {error}. Do not rely on the tools of {server}; "
    "go on with the other tools and say in the analysis what could not be checked."
)
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


async def _run_one(
    call: dict[str, Any], toolbox: Toolbox, server: str, limit: float
) -> tuple[str, str, bool, str | None]:
    """(status, text, whether the server was restarted for it, why the server is down)."""
    payload = {"name": call["name"], "args": call["args"], "id": call["id"]}
    try:
        outcome = await toolbox.invoke(server, payload, time_limit=limit)
    except GraphBubbleUp:
        raise
    except TimeoutError:
        return "error", TOOL_TIMEOUT.format(tool=call["name"], timeout=limit), False, None
    except ServerUnavailable as exc:  # crashed and stayed down: the run goes on without it
        text = SERVER_DOWN.format(tool=call["name"], error=exc, server=server)
        return "error", text, False, f"MCP server {server} unavailable: {exc.reason}"
    except Exception as exc:  # the model reads the failure and can adapt
        error = f"{type(exc).__name__}: {exc}"
        return "error", TOOL_FAILED.format(tool=call["name"], error=error), False, None
    message = outcome.output
    if isinstance(message, ToolMessage):
        text = content_text(message.content)
        status = "error" if message.status == "error" else "ok"
        return status, text, outcome.restarted, None
    return "ok", content_text(message), outcome.restarted, None


async def execute_tools(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = runtime.context
    spec = ctx.registry.agents[state["agent"]]
    iteration = state["iteration"]
    tools = ctx.toolbox.tools_for(spec.mcp_servers)
    writer = runtime.stream_writer
    degraded: list[str] = []
    reported: set[str] = set()

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
        masked, restarted = 0, False
        if entry is None and blocked is not None:
            status, server = "blocked", blocked[0]
            text = BLOCKED.format(name=call["name"], server=blocked[0], reason=blocked[1])
        elif entry is None:
            status = "refused"
            text = UNKNOWN_TOOL.format(
                name=call["name"], agent=spec.name, valid=", ".join(sorted(tools)) or "none"
            )
        else:
            status, text, restarted, down = await _run_one(
                call, ctx.toolbox, entry[0], ctx.tool_timeout
            )
            if down is not None and entry[0] not in reported:  # one event per server
                reported.add(entry[0])
                degraded.append(down)
                emit(
                    writer,
                    EventType.DEGRADED,
                    agent=spec.name,
                    iteration=iteration,
                    step="execute_tools",
                    message=down,
                    server=entry[0],
                )
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
            **({"restarted": True} if restarted else {}),
        )
        return record

    results = await asyncio.gather(*(run(n, c) for n, c in enumerate(state["pending"], 1)))
    log = [{k: v for k, v in r.items() if k != "content"} for r in results]
    update: dict[str, Any] = {"results": list(results), "tool_calls": log, "pending": []}
    if degraded:
        known = state.get("degraded", [])
        update["degraded"] = known + [d for d in degraded if d not in known]
    return update
