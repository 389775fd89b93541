"""The closed set of progress events, and the helper nodes use to emit them."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from langgraph.types import StreamWriter


class EventType(StrEnum):
    SESSION_STARTED = "session_started"
    AGENT_SELECTED = "agent_selected"
    RUNBOOK_FETCHED = "runbook_fetched"
    ITERATION_STARTED = "iteration_started"
    TOOL_CALL_STARTED = "tool_call_started"
    TOOL_CALL_FINISHED = "tool_call_finished"
    PARTIAL_ANALYSIS = "partial_analysis"
    FINAL_ANALYSIS = "final_analysis"
    DEGRADED = "degraded"
    SESSION_COMPLETED = "session_completed"
    SESSION_FAILED = "session_failed"
    HEARTBEAT = "heartbeat"


TERMINAL_EVENTS = frozenset({EventType.SESSION_COMPLETED, EventType.SESSION_FAILED})


def now_iso() -> str:
    """UTC timestamp with microseconds, for chronological ordering."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def make_event(
    type_: EventType,
    *,
    agent: str | None = None,
    iteration: int | None = None,
    step: str | None = None,
    **data: Any,
) -> dict[str, Any]:
    return {
        "type": type_.value,
        "agent": agent,
        "iteration": iteration,
        "step": step,
        "ts": now_iso(),
        "data": data,
    }


def emit(writer: StreamWriter | None, type_: EventType, **fields: Any) -> None:
    """Send a progress event on the run's custom stream (a no-op when nobody streams)."""
    if writer is not None:
        writer(make_event(type_, **fields))
