"""Shared pieces of the model-calling nodes: the composed system prompt, the call record,
and the call itself (through the fallback models when the session has them)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable
from langgraph.config import get_config
from langgraph.runtime import get_runtime

from graph.context import Context, event_sink
from graph.direct_calls import ainvoke_model
from graph.events import EventSink, EventType, emit, now_iso
from graph.fallback import Answer, ModelChain
from graph.registry import AgentSpec
from graph.state import LLMCallRecord
from prompts import render


def system_prompt(ctx: Context, spec: AgentSpec) -> str:
    """Three tiers: general SRE instructions, per-server instructions, agent instructions.
    The same for every call of an agent: rendered once per distinct text."""
    servers = tuple(ctx.registry.server_instructions(spec).items())
    return _system_prompt(spec.name, spec.instructions, servers)


@lru_cache(maxsize=64)
def _system_prompt(agent: str, instructions: str, servers: tuple[tuple[str, str], ...]) -> str:
    return render(
        "system", server_instructions=dict(servers), agent=agent, agent_instructions=instructions
    )


def messages_for(
    ctx: Context, spec: AgentSpec, template: str, **variables: Any
) -> list[BaseMessage]:
    return [SystemMessage(system_prompt(ctx, spec)), HumanMessage(render(template, **variables))]


def time_left(spec: AgentSpec, started_at: str | None) -> float:
    """Seconds left of the agent's `max_duration` (all of it before the agent started)."""
    if not started_at:
        return spec.max_duration
    elapsed = (datetime.now(UTC) - datetime.fromisoformat(started_at)).total_seconds()
    return spec.max_duration - elapsed


async def call_model_within(
    seconds: float,
    runnable: Runnable[Any, Any],
    messages: list[BaseMessage],
    *,
    ctx: Context,
    step: str,
    iteration: int,
) -> tuple[Any, LLMCallRecord] | None:
    """`call_model`, abandoned when the time budget runs out first: None then. The
    provider's own timeouts still raise as before."""
    try:
        async with asyncio.timeout(max(seconds, 0.0)) as budget:
            return await call_model(runnable, messages, ctx=ctx, step=step, iteration=iteration)
    except TimeoutError:
        if budget.expired():
            return None
        raise


async def report_budget_spent(
    sink: EventSink, spec: AgentSpec, *, step: str, iteration: int
) -> None:
    """A `degraded` event: the time budget ran out while the model was answering."""
    await emit(
        sink,
        EventType.DEGRADED,
        agent=spec.name,
        iteration=iteration,
        step=step,
        message=f"the time budget ({spec.max_duration:g} s) ran out while the model was "
        f"answering {step}; going on to the final analysis",
    )


def _usage(message: AIMessage | None) -> dict[str, int]:
    usage = getattr(message, "usage_metadata", None) or {}
    return {k: int(usage.get(k, 0)) for k in ("input_tokens", "output_tokens", "total_tokens")}


async def call_model(
    runnable: Runnable[Any, Any],
    messages: list[BaseMessage],
    *,
    ctx: Context,
    step: str,
    iteration: int,
) -> tuple[Any, LLMCallRecord]:
    """Invoke the model and describe the call for the history.

    `runnable` is the model with tools bound (returns an AIMessage) or a structured-output
    runnable with `include_raw=True` (returns {"raw", "parsed", "parsing_error"}). Built
    from a `FallbackChatModel` it is a `ModelChain`: the record then names the model that
    answered, and a switch to a fallback is recorded and reported as `degraded`."""
    started, clock = now_iso(), time.perf_counter()
    answer: Answer | None = None
    if isinstance(runnable, ModelChain):
        answer = await runnable.ainvoke_tracked(messages)
        result = answer.result
    else:
        result = await ainvoke_model(runnable, messages)
    duration_ms = (time.perf_counter() - clock) * 1000
    raw: AIMessage | None = result["raw"] if isinstance(result, dict) else result
    record: LLMCallRecord = {
        "step": step,
        "iteration": iteration,
        "model": answer.model if answer else ctx.model_name,
        "started_at": started,
        "duration_ms": round(duration_ms, 3),
        "messages": [{"role": m.type, "content": m.text} for m in messages],
        "response": raw.text if raw is not None else "",
        "tool_calls": [
            {"name": c["name"], "args": c["args"], "id": c.get("id")}
            for c in (raw.tool_calls if raw is not None else [])
        ],
        "usage": _usage(raw),
    }
    if answer is not None and answer.fell_back:
        record["fallback_from"] = answer.primary
    if answer is not None and answer.failures:
        record["fallback_errors"] = [f"{label}: {error}" for label, error in answer.failures]
        await _report_fallback(ctx, answer, step=step, iteration=iteration)
    return result, record


async def _report_fallback(ctx: Context, answer: Answer, *, step: str, iteration: int) -> None:
    """A `degraded` progress event: which model failed, why, and which one answered."""
    failed = "; ".join(f"model {label} failed ({error})" for label, error in answer.failures)
    try:
        sink = event_sink(get_runtime(Context))
        namespace = str(get_config().get("configurable", {}).get("checkpoint_ns", ""))
    except (RuntimeError, KeyError):  # called outside a graph run
        return
    # The agent subgraph's node name heads the namespace ("kubernetes_agent:<task>|...").
    node = namespace.split("|")[0].split(":")[0]
    agent = next((a.name for a in ctx.registry.agents.values() if a.node_name == node), None)
    await emit(
        sink,
        EventType.DEGRADED,
        agent=agent,
        iteration=iteration,
        step=step,
        message=f"{failed}; continuing with {answer.model}",
        model=answer.model,
        failed=[label for label, _ in answer.failures],
    )
