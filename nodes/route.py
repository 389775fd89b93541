"""`route`: pick the specialized agent for the alert type, or fail the session clearly.

Like the agent loop's nodes, it says where the run goes next (a `Command`): the runbook,
or the end when no agent can take the alert."""

from __future__ import annotations

from typing import Any, Literal

from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.types import Command
from pydantic import ValidationError

from graph.alert import Alert
from graph.context import Context, event_sink
from graph.events import EventType, emit
from graph.state import InvestigationState
from graph.validation import describe_errors

NO_AGENT = "No specialized agent for alert type '{alert_type}'"


async def route(
    state: InvestigationState, runtime: Runtime[Context]
) -> Command[Literal["fetch_runbook", "__end__"]]:
    update = await _route(state, runtime)
    if update["status"] == "failed":
        return Command(update=update, goto=END)  # type: ignore[arg-type]  # END is "__end__"
    return Command(update=update, goto="fetch_runbook")


async def _route(state: InvestigationState, runtime: Runtime[Context]) -> dict[str, Any]:
    try:
        alert = Alert.model_validate(state["alert"])
    except ValidationError as exc:
        error = f"invalid alert: {describe_errors(exc.errors())}"
        return {"status": "failed", "error": error, "agent": None}
    spec = runtime.context.registry.agent_for(alert.alert_type)
    if spec is None:
        return {
            "status": "failed",
            "error": NO_AGENT.format(alert_type=alert.alert_type),
            "agent": None,
        }
    await emit(
        event_sink(runtime),
        EventType.AGENT_SELECTED,
        agent=spec.name,
        step="route",
        alert_type=alert.alert_type,
        mcp_servers=list(spec.mcp_servers),
        max_iterations=spec.max_iterations,
    )
    return {
        "alert": alert.to_state(),
        "status": "running",
        "error": None,
        "agent": spec.name,
        "mcp_servers": list(spec.mcp_servers),
    }
