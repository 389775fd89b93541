"""`route`: pick the specialized agent for the alert type, or fail the session clearly."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from pydantic import ValidationError

from graph.alert import Alert
from graph.context import Context, event_sink
from graph.events import EventType, emit
from graph.state import InvestigationState
from graph.validation import describe_errors

NO_AGENT = "No specialized agent for alert type '{alert_type}'"


async def route(state: InvestigationState, runtime: Runtime[Context]) -> dict[str, Any]:
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
