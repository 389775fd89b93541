"""Run (or resume) one investigation: stream the graph with subgraphs, forward progress
events, and always end with a terminal event and a status."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import StreamMode

from graph.context import Context
from graph.events import EventType, make_event
from graph.mcp_errors import describe_error

log = logging.getLogger(__name__)

# A list, not a tuple: LangGraph yields (namespace, mode, chunk) only for a list of modes.
_STREAM_MODES: list[StreamMode] = ["custom", "values"]

EventSink = Callable[[dict[str, Any]], Awaitable[None] | None]


async def _send(sink: EventSink | None, event: dict[str, Any]) -> None:
    if sink is None:
        return
    result = sink(event)
    if inspect.isawaitable(result):
        await result


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
    await _send(
        on_event,
        make_event(
            EventType.SESSION_STARTED,
            thread_id=thread_id,
            resumed=alert is None,
            model=context.model_name,
        ),
    )
    values: dict[str, Any] = {}
    try:
        async for namespace, mode, chunk in graph.astream(
            {"alert": alert} if alert is not None else None,
            config,
            context=context,
            stream_mode=_STREAM_MODES,
            subgraphs=True,
        ):
            if mode == "custom" and isinstance(chunk, dict):
                await _send(on_event, chunk)
            elif mode == "values" and not namespace and isinstance(chunk, dict):
                values = dict(chunk)
    except Exception as exc:
        log.exception("investigation %s failed", thread_id)
        values = {**values, "status": "failed", "error": describe_error(exc)}
    if values.get("status") != "completed":
        values["status"] = "failed"
        values["error"] = values.get("error") or "the investigation ended without an analysis"
        await _send(
            on_event,
            make_event(EventType.SESSION_FAILED, agent=values.get("agent"), error=values["error"]),
        )
    else:
        await _send(
            on_event,
            make_event(
                EventType.SESSION_COMPLETED,
                agent=values.get("agent"),
                iteration=values.get("iteration"),
                analysis=values.get("analysis"),
            ),
        )
    return values
