"""`select_tools`: start an iteration; the model picks tools of the agent's servers only.

The node says where the loop goes next (a `Command`): tools chosen → execute_tools, none →
final_analysis. A conditional edge would decide the same, but LangGraph reads a copy of
every channel of the state for it after each run of the node."""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Command

from graph.context import Context, event_sink
from graph.events import EventType, emit, now_iso
from graph.state import AgentState
from nodes._llm import call_model_within, messages_for, report_budget_spent, time_left


async def select_tools(
    state: AgentState, runtime: Runtime[Context]
) -> Command[Literal["execute_tools", "final_analysis"]]:
    update = await _select(state, runtime)
    return Command(update=update, goto=after_select(update))


async def _select(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = runtime.context
    spec = ctx.registry.agents[state["agent"]]
    iteration = state.get("iteration", 0) + 1
    started = now_iso()
    tools = ctx.toolbox.tools_for(spec.mcp_servers)
    unavailable = ctx.toolbox.unavailable(spec.mcp_servers)
    degraded = [f"MCP server {s} unavailable: {r}" for s, r in unavailable.items()]
    await emit(
        event_sink(runtime),
        EventType.ITERATION_STARTED,
        agent=spec.name,
        iteration=iteration,
        step="select_tools",
        max_iterations=spec.max_iterations,
        tools=len(tools),
    )
    if degraded and iteration == 1:
        for message in degraded:
            await emit(
                event_sink(runtime),
                EventType.DEGRADED,
                agent=spec.name,
                iteration=iteration,
                step="select_tools",
                message=message,
            )
    if not tools:
        return {
            "iteration": iteration,
            "pending": [],
            "stop_reason": "no_tools",
            "degraded": degraded,
        }
    messages = messages_for(
        ctx,
        spec,
        "select_tools",
        iteration=iteration,
        max_iterations=spec.max_iterations,
        alert=state["alert"],
        runbook=state.get("runbook"),
        tool_calls=state.get("tool_calls", []),
        notes=state.get("notes", ""),
        unavailable=unavailable,
    )
    agent_started = state.get("started_at") or started
    bound = ctx.with_tools([tool for _, tool in tools.values()])
    answered = await call_model_within(
        time_left(spec, agent_started),
        bound,
        messages,
        ctx=ctx,
        step="select_tools",
        iteration=iteration,
    )
    if answered is None:
        await report_budget_spent(
            event_sink(runtime), spec, step="select_tools", iteration=iteration
        )
        return {
            "started_at": agent_started,
            "iteration": iteration,
            "pending": [],
            "stop_reason": "max_duration",
            "degraded": degraded,
        }
    response, record = answered
    pending = [
        {"id": call.get("id") or f"{iteration}-{n}", "name": call["name"], "args": call["args"]}
        for n, call in enumerate(response.tool_calls, 1)
    ]
    update: dict[str, Any] = {
        "iteration": iteration,
        "pending": pending,
        "llm_call": record,
        "tokens": record["usage"]["total_tokens"],
    }
    # what has not changed is not written again (a write costs a checkpoint row)
    if "started_at" not in state:
        update["started_at"] = agent_started
    if state.get("degraded") != degraded:
        update["degraded"] = degraded
    if not pending:
        update["stop_reason"] = "model_concluded"
        if response.text:
            update["notes"] = (state.get("notes", "") + "\n\n" + response.text).strip()
    return update


def after_select(update: dict[str, Any]) -> Literal["execute_tools", "final_analysis"]:
    """Tools chosen → run them; none → the model concluded (or had no tools)."""
    return "execute_tools" if update.get("pending") else "final_analysis"
