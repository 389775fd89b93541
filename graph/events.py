"""The closed set of progress events, and the helper nodes use to emit them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

EventSink = Callable[[dict[str, Any]], Awaitable[None] | None]
"""Takes progress events: a plain function, or a coroutine function (then awaited)."""


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


async def deliver(sink: EventSink | None, event: dict[str, Any]) -> None:
    """Hand `event` to `sink` (None: nobody listens)."""
    if sink is not None:
        taken = sink(event)
        if taken is not None:
            await taken


async def emit(sink: EventSink | None, type_: EventType, **fields: Any) -> None:
    """Make a progress event and hand it to `sink`."""
    if sink is not None:
        await deliver(sink, make_event(type_, **fields))
