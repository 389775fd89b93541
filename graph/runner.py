"""Run (or resume) one investigation: the nodes send their progress events to the
caller's sink as they go, and the run always ends with a terminal event and a status."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph

from graph.context import Context
from graph.events import EventSink, EventType, deliver, make_event
from graph.mcp_errors import describe_error

log = logging.getLogger(__name__)


async def run_investigation(
    graph: CompiledStateGraph[Any, Any, Any, Any],
    *,
    thread_id: str,
    context: Context,
    alert: dict[str, Any] | None,
    on_event: EventSink | None = None,
    checkpoint_id: str | None = None,
) -> dict[str, Any]:
    """Investigate `alert` on thread `thread_id` (alert None: resume from the checkpoint).

    Returns the final orchestrator state; `status` is "completed" or "failed" (with
    `error`). Exceptions from the graph are turned into a failed status, never raised."""
    configurable: dict[str, Any] = {"thread_id": thread_id}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    config: RunnableConfig = {"configurable": configurable, "recursion_limit": 1000}
    await deliver(
        on_event,
        make_event(
            EventType.SESSION_STARTED,
            thread_id=thread_id,
            resumed=alert is None,
            model=context.model_name,
        ),
    )
    values: dict[str, Any] = {}
    # The nodes hand their events to `on_event` themselves (Context.on_event): on
    # LangGraph's stream, each would cross to the loop through call_soon_threadsafe and
    # wake it once more. The stream carries only the orchestrator's state after each of
    # its steps.
    context = replace(context, on_event=on_event)
    try:
        async for chunk in graph.astream(
            {"alert": alert} if alert is not None else None,
            config,
            context=context,
            stream_mode="values",
        ):
            if isinstance(chunk, dict):
                values = dict(chunk)
    except Exception as exc:
        log.exception("investigation %s failed", thread_id)
        values = {**values, "status": "failed", "error": describe_error(exc)}
    if values.get("status") != "completed":
        values["status"] = "failed"
        values["error"] = values.get("error") or "the investigation ended without an analysis"
        await deliver(
            on_event,
            make_event(EventType.SESSION_FAILED, agent=values.get("agent"), error=values["error"]),
        )
    else:
        await deliver(
            on_event,
            make_event(
                EventType.SESSION_COMPLETED,
                agent=values.get("agent"),
                iteration=values.get("iteration"),
                analysis=values.get("analysis"),
            ),
        )
    return values
