"""One investigation's run in the service: stream the graph, publish its progress
(event log, session index, metrics), record the outcome in the index, then publish the
terminal event, so whoever sees "completed" can read the finished session from the
history."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.graph.state import CompiledStateGraph

from graph.analysis import render_markdown
from graph.events import TERMINAL_EVENTS, EventType, make_event
from graph.runner import run_investigation
from graph.services import Services
from server.eventlog import EventLog
from server.logging_setup import bind_agent
from server.metrics import Metrics
from server.session_index import SessionIndex
from server.sessions import SessionState

log = logging.getLogger(__name__)


@dataclass
class Job:
    session_id: str
    alert: dict[str, Any] | None  # None: resume from the session's checkpoint
    model: BaseChatModel | None = None
    model_name: str | None = None


class SessionRun:
    """Runs a `Job` to its end (called by the engine's workers)."""

    def __init__(
        self,
        graph: CompiledStateGraph[Any, Any, Any, Any],
        services: Services,
        *,
        sessions: SessionIndex,
        events: EventLog,
        metrics: Metrics,
    ) -> None:
        self.graph, self.services = graph, services
        self.sessions, self.events, self.metrics = sessions, events, metrics

    async def __call__(self, job: Job) -> None:
        sid = job.session_id
        state = await self.sessions.get(sid)
        bind_agent(state.current_agent)  # known already when resuming
        state.status = "processing"
        await self.sessions.update(sid, status="processing")

        terminal: list[dict[str, Any]] = []

        async def publish(event: dict[str, Any]) -> dict[str, Any]:
            await self.events.append(sid, event)
            self.metrics.observe(sid, event)
            return state.apply(event)

        # Iterations announced: a retried model step, or a run resumed after a crash or a
        # restart, runs select_tools again for an iteration that already began.
        # A resumed run also picks up where the progress was (iteration, its limit), which
        # the index may not have had time to record.
        announced: set[Any] = set()
        if job.alert is None:
            for event in await self.events.past(sid):
                if event.get("type") == EventType.ITERATION_STARTED:
                    announced.add(event.get("iteration"))
                if event.get("type") not in TERMINAL_EVENTS:
                    state.apply(event)

        async def on_event(event: dict[str, Any]) -> None:
            if event["type"] == EventType.ITERATION_STARTED:
                if event.get("iteration") in announced:
                    return  # the model step was retried: the iteration began once
                announced.add(event.get("iteration"))
            if event["type"] in TERMINAL_EVENTS:
                terminal.append(event)  # published once the index says so too
                return
            bind_agent(event.get("agent"))  # from agent_selected on: on every log line
            await self.sessions.update(sid, **await publish(event))

        context = self.services.context(model=job.model, model_name=job.model_name)
        values = await run_investigation(
            self.graph, thread_id=sid, context=context, alert=job.alert, on_event=on_event
        )
        await self._finish(state, values)
        for event in terminal:
            await publish(event)
        self.sessions.settled(sid)

    async def _finish(self, state: SessionState, values: dict[str, Any]) -> None:
        """Write the outcome to the index first, then show it (status, terminal event), so
        whoever sees "completed" can read the finished session from the history."""
        self.metrics.tokens_used(state.model, values.get("tokens", 0))
        result = error = None
        if values.get("status") == "completed" and values.get("analysis"):
            status, progress = "completed", 100
            result = render_markdown(values["analysis"], values.get("tool_calls", []))
            fields: dict[str, Any] = {"result": values["analysis"], "result_markdown": result}
        else:
            status, progress = "failed", state.progress
            error = values.get("error") or "unknown failure"
            fields = {"error_message": error}
        await self.sessions.update(
            state.session_id,
            durable=True,
            status=status,
            progress=progress,
            current_step=status,
            iterations=values.get("iteration", 0),
            tokens=values.get("tokens", 0),
            agent_type=values.get("agent"),
            **fields,
        )
        state.status, state.progress, state.current_step = status, progress, status
        state.result, state.error = result, error

    async def fail(self, state: SessionState, error: str, *, level: int = logging.ERROR) -> None:
        """End a session that cannot run (on), saying why: index, state, terminal event."""
        log.log(level, "session %s failed: %s", state.session_id, error)
        await self.sessions.update(
            state.session_id,
            durable=True,
            status="failed",
            current_step="failed",
            error_message=error,
        )
        state.status, state.current_step, state.error = "failed", "failed", error
        await self.events.open(state.session_id)
        event = make_event(EventType.SESSION_FAILED, agent=state.current_agent, error=error)
        await self.events.append(state.session_id, event)
        self.sessions.settled(state.session_id)
