"""`execute_tools`: run the iteration's tool calls concurrently through the MCP sessions.

Keeps ToolNode's contract: a failing tool becomes an error result the model can read; a
tool outside the agent's servers is refused with the list of valid names. A server that
crashes under a call is restarted once and the call retried (by the toolbox); one that stays
down turns the call into an error result and the run goes on `degraded`."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from langgraph.errors import GraphBubbleUp
from langgraph.runtime import Runtime

from graph.context import Context, event_sink
from graph.events import EventType, emit, now_iso
from graph.mcp_errors import ServerUnavailable
from graph.policy import BLOCKED
from graph.state import AgentState, ToolCallRecord
from graph.toolbox import Toolbox

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


@dataclass
class Outcome:
    """How one tool call went, before it becomes a ToolCallRecord."""

    status: Literal["ok", "error", "refused", "blocked"]
    text: str
    server: str | None
    masked: int = 0
    restarted: bool = False
    down: str | None = None  # why the server is unavailable, when it is


async def _invoke(call: dict[str, Any], toolbox: Toolbox, server: str, limit: float) -> Outcome:
    payload = {"name": call["name"], "args": call["args"], "id": call["id"]}
    try:
        result = await toolbox.invoke(server, payload, time_limit=limit)
    except GraphBubbleUp:
        raise
    except TimeoutError:
        return Outcome("error", TOOL_TIMEOUT.format(tool=call["name"], timeout=limit), server)
    except ServerUnavailable as exc:  # crashed and stayed down: the run goes on without it
        text = SERVER_DOWN.format(tool=call["name"], error=exc, server=server)
        return Outcome("error", text, server, down=f"MCP server {server} unavailable: {exc.reason}")
    except Exception as exc:  # the model reads the failure and can adapt
        error = f"{type(exc).__name__}: {exc}"
        return Outcome("error", TOOL_FAILED.format(tool=call["name"], error=error), server)
    message = result.output
    failed = isinstance(message, ToolMessage) and message.status == "error"
    content = message.content if isinstance(message, ToolMessage) else message
    return Outcome(
        "error" if failed else "ok", content_text(content), server, restarted=result.restarted
    )


async def _call(
    ctx: Context,
    agent: str,
    servers: tuple[str, ...],
    tools: dict[str, tuple[str, BaseTool]],
    call: dict[str, Any],
) -> Outcome:
    """Run one call if the agent may (`tools`: the agent's, by name); refuse unknown tools
    and those the policy blocks."""
    entry = tools.get(call["name"])
    if entry is None:
        blocked = ctx.toolbox.blocked_for(servers).get(call["name"])
        if blocked is not None:
            text = BLOCKED.format(name=call["name"], server=blocked[0], reason=blocked[1])
            return Outcome("blocked", text, blocked[0])
        valid = ", ".join(sorted(tools)) or "none"
        return Outcome(
            "refused", UNKNOWN_TOOL.format(name=call["name"], agent=agent, valid=valid), None
        )
    outcome = await _invoke(call, ctx.toolbox, entry[0], ctx.tool_timeout)
    masker = ctx.toolbox.masker_for(entry[0])
    if masker is not None:
        outcome.text, outcome.masked = masker.mask_text(outcome.text)
    return outcome


async def execute_tools(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = runtime.context
    spec = ctx.registry.agents[state["agent"]]
    iteration = state["iteration"]
    tools = ctx.toolbox.tools_for(spec.mcp_servers)
    say = partial(
        emit, event_sink(runtime), agent=spec.name, iteration=iteration, step="execute_tools"
    )
    down: dict[str, str] = {}  # server → why, reported once per server

    async def run(n: int, call: dict[str, Any]) -> ToolCallRecord:
        ref, name = f"T{iteration}.{n}", call["name"]
        entry = tools.get(name)
        await say(
            EventType.TOOL_CALL_STARTED,
            ref=ref,
            tool=name,
            server=entry[0] if entry else None,
            args=call["args"],
        )
        started, clock = now_iso(), time.perf_counter()
        outcome = await _call(ctx, spec.name, spec.mcp_servers, tools, call)
        if outcome.down is not None and outcome.server not in down:
            down[outcome.server or ""] = outcome.down
            await say(EventType.DEGRADED, message=outcome.down, server=outcome.server)
        content, size, truncated = cap(outcome.text, ctx.tool_output_max_bytes)
        record: ToolCallRecord = {
            "ref": ref,
            "id": call["id"],
            "iteration": iteration,
            "server": outcome.server,
            "tool": name,
            "args": call["args"],
            "status": outcome.status,
            "started_at": started,
            "duration_ms": round((time.perf_counter() - clock) * 1000, 3),
            "size": size,
            "truncated": truncated,
            "masked": outcome.masked,
            "content": content,
        }
        await say(
            EventType.TOOL_CALL_FINISHED,
            ref=ref,
            tool=name,
            server=outcome.server,
            status=outcome.status,
            duration_ms=record["duration_ms"],
            size=size,
            truncated=truncated,
            masked=outcome.masked,
            **({"restarted": True} if outcome.restarted else {}),
        )
        return record

    results = await asyncio.gather(*(run(n, c) for n, c in enumerate(state["pending"], 1)))
    log = [{k: v for k, v in r.items() if k != "content"} for r in results]
    update: dict[str, Any] = {"results": list(results), "tool_calls": log, "pending": []}
    if down:
        known = state.get("degraded", [])
        update["degraded"] = known + [d for d in down.values() if d not in known]
    return update
