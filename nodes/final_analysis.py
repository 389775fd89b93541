"""`final_analysis`: write the root-cause analysis with evidence and remediation.

It gets what is left of the time budget, and at least one model request's time
(`Context.model_timeout`) when the budget is spent. A model that has not written it by then
is abandoned: the session ends with the findings so far, at low confidence, and a
`degraded` event says why."""

from __future__ import annotations

from functools import partial
from typing import Any

from langgraph.runtime import Runtime

from graph.analysis import RootCauseAnalysis
from graph.context import Context, event_sink
from graph.events import EventType, emit
from graph.state import AgentState, Evidence, FinalAnalysis, StopReason
from nodes._llm import call_model_within, messages_for, time_left

STOP_NOTES: dict[str, str] = {
    "max_iterations": "The investigation reached its iteration limit: no more tools can be "
    "called. Conclude from what is known and say what remains unverified.",
    "no_tools": "No tool server is available to this agent, so nothing could be checked: "
    "reason from the alert and runbook only, with low confidence.",
    "max_tokens": "The investigation used its token budget: no more tools can be called. "
    "Conclude from what is known and say what remains unverified.",
    "max_duration": "The investigation used its time budget: no more tools can be called. "
    "Conclude from what is known and say what remains unverified.",
    "model_concluded": "",
}


def _checked_evidence(items: list[Evidence], known: set[str]) -> list[Evidence]:
    """Keep the model's citations honest: an unknown ref is flagged, not silently kept."""
    checked = []
    for item in items:
        ref = item["tool_call"].strip()
        if ref not in known and ref not in ("alert", "runbook"):
            item = {
                "finding": f"{item['finding']} (cited call {ref!r} does not exist)",
                "tool_call": "unverified",
            }
        checked.append(item)
    return checked


async def final_analysis(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = runtime.context
    spec = ctx.registry.agents[state["agent"]]
    iteration = state.get("iteration", 0)
    stop_reason: StopReason = state.get("stop_reason") or "model_concluded"
    messages = messages_for(
        ctx,
        spec,
        "final_analysis",
        stop_note=STOP_NOTES[stop_reason],
        alert=state["alert"],
        runbook=state.get("runbook"),
        tool_calls=state.get("tool_calls", []),
        notes=state.get("notes", ""),
        unavailable=ctx.toolbox.unavailable(spec.mcp_servers),
        results=state.get("results", []),
    )
    runnable = ctx.with_schema(RootCauseAnalysis)
    limit = max(time_left(spec, state.get("started_at")), ctx.model_timeout)
    answered = await call_model_within(
        limit, runnable, messages, ctx=ctx, step="final_analysis", iteration=iteration
    )
    say = partial(
        emit, event_sink(runtime), agent=spec.name, iteration=iteration, step="final_analysis"
    )
    if answered is None:
        await say(
            EventType.DEGRADED,
            message=f"the model did not write the final analysis within {limit:g} s; "
            "the session ends with the findings so far",
        )
        analysis = _unwritten(state.get("notes", ""), limit, stop_reason, iteration)
        call: dict[str, Any] = {}
    else:
        result, record = answered
        known = {c["ref"] for c in state.get("tool_calls", [])}
        analysis = _written(result["parsed"], record["response"], known, stop_reason, iteration)
        call = {"llm_call": record, "tokens": record["usage"]["total_tokens"]}
    await say(EventType.FINAL_ANALYSIS, analysis=analysis)
    return {"analysis": analysis, "status": "completed", "results": [], **call}


def _written(
    parsed: Any, response: str, known: set[str], stop_reason: StopReason, iteration: int
) -> FinalAnalysis:
    """The model's analysis: its structure, or its text when it did not keep to it."""
    if isinstance(parsed, RootCauseAnalysis):
        return {
            "summary": parsed.summary,
            "root_cause": parsed.root_cause,
            "evidence": _checked_evidence(
                [{"finding": e.finding, "tool_call": e.tool_call} for e in parsed.evidence], known
            ),
            "remediation": parsed.remediation,
            "confidence": parsed.confidence,
            "stop_reason": stop_reason,
            "iterations": iteration,
        }
    return {
        "summary": response or "(the model returned no analysis)",
        "root_cause": "The model's answer was not in the required structure; see summary.",
        "evidence": [],
        "remediation": [],
        "confidence": "low",
        "stop_reason": stop_reason,
        "iterations": iteration,
    }


def _unwritten(notes: str, limit: float, stop_reason: StopReason, iteration: int) -> FinalAnalysis:
    """The model did not write the analysis in time: what is known, at low confidence."""
    return {
        "summary": f"The model did not write the final analysis within {limit:g} s. "
        f"The findings so far:\n\n{notes.strip() or '(none were written)'}",
        "root_cause": "Not determined: the final analysis was not written in time.",
        "evidence": [],
        "remediation": [],
        "confidence": "low",
        "stop_reason": stop_reason,
        "iterations": iteration,
    }
