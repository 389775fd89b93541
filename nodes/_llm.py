"""Shared pieces of the model-calling nodes: the composed system prompt, the call record,
and the call itself."""

from __future__ import annotations

import time
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable

from graph.context import Context
from graph.events import now_iso
from graph.registry import AgentSpec
from graph.state import LLMCallRecord
from prompts import render


def system_prompt(ctx: Context, spec: AgentSpec) -> str:
    """Three tiers: general SRE instructions, per-server instructions, agent instructions."""
    return render(
        "system",
        server_instructions=ctx.registry.server_instructions(spec),
        agent=spec.name,
        agent_instructions=spec.instructions,
    )


def messages_for(
    ctx: Context, spec: AgentSpec, template: str, **variables: Any
) -> list[BaseMessage]:
    return [SystemMessage(system_prompt(ctx, spec)), HumanMessage(render(template, **variables))]


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
    runnable with `include_raw=True` (returns {"raw", "parsed", "parsing_error"})."""
    started, clock = now_iso(), time.perf_counter()
    result = await runnable.ainvoke(messages)
    duration_ms = (time.perf_counter() - clock) * 1000
    raw: AIMessage | None = result["raw"] if isinstance(result, dict) else result
    record: LLMCallRecord = {
        "step": step,
        "iteration": iteration,
        "model": ctx.model_name,
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
    return result, record
