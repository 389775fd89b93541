"""Server-Sent Events of an investigation: every event from the beginning (or after
Last-Event-ID), then live ones; the stream closes after the terminal event."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from graph.events import EventType, make_event
from server.deps import RuntimeDep
from server.session_index import UnknownSession

router = APIRouter(tags=["events"])

HEARTBEAT_SECONDS = 15


def to_sse(seq: int, event: dict[str, object]) -> ServerSentEvent:
    """The one place an event becomes an SSE message."""
    return ServerSentEvent(
        id=str(seq), event=str(event["type"]), data=json.dumps(event, default=str)
    )


def heartbeat() -> ServerSentEvent:
    return ServerSentEvent(
        event=EventType.HEARTBEAT.value, data=json.dumps(make_event(EventType.HEARTBEAT))
    )


def _after(last_event_id: str | None) -> int:
    if last_event_id is None or last_event_id == "":
        return 0
    try:
        value = int(last_event_id)
    except ValueError as exc:
        raise HTTPException(
            400, detail=f"Last-Event-ID must be an event number, got {last_event_id!r}"
        ) from exc
    if value < 0:
        raise HTTPException(400, detail="Last-Event-ID must not be negative")
    return value


@router.get(
    "/alerts/{alert_id}/events",
    name="alert_events",
    response_class=EventSourceResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "The investigation's events as Server-Sent Events.",
        },
        404: {"description": "Unknown alert id."},
    },
)
async def alert_events(
    alert_id: str,
    runtime: RuntimeDep,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
    after: Annotated[int | None, Query(ge=0, description="Like Last-Event-ID.")] = None,
) -> EventSourceResponse:
    """Stream the events of the alert's investigation."""
    try:
        state = await runtime.investigations.session_for_alert(alert_id)
    except UnknownSession as exc:
        raise HTTPException(404, detail=f"unknown alert_id '{alert_id}'") from exc
    start = after if after is not None else _after(last_event_id)

    async def finished() -> dict[str, object] | None:
        return await runtime.investigations.missing_terminal_event(state.session_id)

    async def stream() -> AsyncIterator[ServerSentEvent]:
        async for seq, event in runtime.events.subscribe(state.session_id, start, finished):
            yield to_sse(seq, event)

    return EventSourceResponse(
        stream(),
        ping=HEARTBEAT_SECONDS,
        ping_message_factory=heartbeat,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
