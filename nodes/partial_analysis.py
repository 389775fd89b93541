"""`partial_analysis`: fold the iteration's results into the running analysis and decide
whether to investigate further (a `Command` to select_tools or final_analysis, as
`select_tools` does)."""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Command

from graph.analysis import PartialAnalysis
from graph.context import Context, event_sink
from graph.events import EventType, emit
from graph.registry import AgentSpec
from graph.state import AgentState, StopReason
from nodes._llm import call_model_within, messages_for, report_budget_spent, time_left


async def partial_analysis(
    state: AgentState, runtime: Runtime[Context]
) -> Command[Literal["select_tools", "final_analysis"]]:
    update = await _analyse(state, runtime)
    return Command(update=update, goto=after_partial({**state, **update}))


async def _analyse(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = runtime.context
    spec = ctx.registry.agents[state["agent"]]
    iteration = state["iteration"]
    messages = messages_for(
        ctx,
        spec,
        "partial_analysis",
        iteration=iteration,
        max_iterations=spec.max_iterations,
        alert=state["alert"],
        tool_calls=state.get("tool_calls", []),
        notes=state.get("notes", ""),
        unavailable={},
        results=state.get("results", []),
    )
    runnable = ctx.with_schema(PartialAnalysis)
    answered = await call_model_within(
        time_left(spec, state.get("started_at")),
        runnable,
        messages,
        ctx=ctx,
        step="partial_analysis",
        iteration=iteration,
    )
    if answered is None:  # the results stay in the state for the final analysis
        await report_budget_spent(
            event_sink(runtime), spec, step="partial_analysis", iteration=iteration
        )
        return {"conclude": False, "stop_reason": "max_duration"}
    result, record = answered
    parsed = result["parsed"]
    if isinstance(parsed, PartialAnalysis):
        analysis, conclude = parsed.analysis, parsed.conclude
    else:  # unstructured answer: keep the text, go on while the budget lasts
        analysis, conclude = record["response"] or "(the model gave no analysis)", False
    tokens = state.get("tokens", 0) + record["usage"]["total_tokens"]
    stop_reason = "model_concluded" if conclude else budget_spent(spec, state, iteration, tokens)
    await emit(
        event_sink(runtime),
        EventType.PARTIAL_ANALYSIS,
        agent=spec.name,
        iteration=iteration,
        step="partial_analysis",
        analysis=analysis,
        conclude=conclude,
        stop_reason=stop_reason,
    )
    update: dict[str, Any] = {
        "notes": analysis,
        # one line per iteration: `notes` holds the running analysis and this step's
        # llm_call write the full text, so the state need not grow with whole analyses
        "findings": [{"iteration": iteration, "analysis": " ".join(analysis.split())[:160]}],
        "llm_call": record,
        "tokens": record["usage"]["total_tokens"],
    }
    # what has not changed is not written again (a write costs a checkpoint row)
    if conclude != state.get("conclude", False):
        update["conclude"] = conclude
    if stop_reason != state.get("stop_reason"):
        update["stop_reason"] = stop_reason
    return update


def budget_spent(
    spec: AgentSpec, state: AgentState, iteration: int, tokens: int
) -> StopReason | None:
    """Which budget, if any, stops the investigation after this iteration."""
    if iteration >= spec.max_iterations:
        return "max_iterations"
    if tokens >= spec.max_tokens:
        return "max_tokens"
    started = state.get("started_at")
    if started and time_left(spec, started) <= 0:
        return "max_duration"
    return None


def after_partial(state: dict[str, Any]) -> Literal["select_tools", "final_analysis"]:
    """Go on unless the model concluded or a budget is spent (`state`: as this step leaves
    it; an unchanged stop reason is not written again)."""
    return "final_analysis" if state.get("stop_reason") else "select_tools"
