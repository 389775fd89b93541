"""Prometheus metrics of one running service, fed by the investigations' progress events.

Every app owns its `Metrics` (its own `CollectorRegistry`, nothing registered at import
time), so several apps can run in one process. Most series come from `observe(session_id,
event)`, called for each event a session emits; the few things no event carries (alerts
received and deduplicated, tokens of a finished session, the queue) are fed by the
investigation manager.

With worker processes (`sre-agent serve --workers N`), each worker keeps its metrics in
files of its own in PROMETHEUS_MULTIPROC_DIR (the supervisor sets it: prometheus_client
then stores every value there), and a scrape, whichever worker answers it, adds up all of
them: counters and histograms over every worker that ever ran, the gauges over the live
ones."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from graph.events import EventType

ALERT_SOURCES = ("api", "alertmanager", "cli", "replay")
# Investigations take seconds to many minutes (model latency × iterations).
DURATION_BUCKETS = (1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)
NO_AGENT = "none"  # the agent label of a session that failed before one was selected
NO_SERVER = "none"  # the server label of a refused call to a tool no server offers

# The steps of the agent loop that call the model, and the event each call goes with.
_LLM_STEP_OF_EVENT = {
    EventType.PARTIAL_ANALYSIS.value: "partial_analysis",
    EventType.FINAL_ANALYSIS.value: "final_analysis",
}


MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def shared_dir() -> str | None:
    """Where the worker processes' metrics are shared, when the service has workers."""
    return os.environ.get(MULTIPROCESS_ENV) or None


@dataclass
class _Session:
    started: float
    model: str
    agent: str | None = None


class Metrics:
    """The service's metrics, on a registry of their own (`self.registry`)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.alerts_received = Counter(
            "sre_agent_alerts_received",
            "Alerts received for investigation, by where they came from.",
            ["source"],
            registry=r,
        )
        self.alerts_deduplicated = Counter(
            "sre_agent_alerts_deduplicated",
            "Alerts that matched an existing session and started no new investigation.",
            ["source"],
            registry=r,
        )
        self.sessions = Counter(
            "sre_agent_sessions_finished",
            "Finished investigations, by final status and agent.",
            ["status", "agent"],
            registry=r,
        )
        self.sessions_in_progress = Gauge(
            "sre_agent_sessions_in_progress",
            "Investigations running now or queued to run.",
            ["state"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.queue_depth = Gauge(
            "sre_agent_queue_depth",
            "Investigations waiting for a free worker.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.duration = Histogram(
            "sre_agent_investigation_duration_seconds",
            "Wall time of an investigation run, start to terminal event.",
            ["agent", "status"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.llm_calls = Counter(
            "sre_agent_llm_calls",
            "Model calls, by agent-loop step and model.",
            ["step", "model"],
            registry=r,
        )
        self.llm_tokens = Counter(
            "sre_agent_llm_tokens",
            "Tokens (input + output) of finished investigations' model calls, by model.",
            ["model"],
            registry=r,
        )
        self.tool_calls = Counter(
            "sre_agent_tool_calls",
            "MCP tool calls, by server and outcome (ok, error, refused).",
            ["server", "outcome"],
            registry=r,
        )
        for source in ALERT_SOURCES:  # present at zero from the start, so rate() works
            self.alerts_received.labels(source=source)
            self.alerts_deduplicated.labels(source=source)
        for state in ("running", "queued"):
            self.sessions_in_progress.labels(state=state)
        self._sessions: dict[str, _Session] = {}
        self._load: Callable[[], dict[str, int]] | None = None

    # --- fed by the manager -----------------------------------------------------------

    def track_load(self, load: Callable[[], dict[str, int]]) -> None:
        """Set the gauges from `load()` (the manager's running/queued) now, and whenever
        the manager says it changed (`load_changed`)."""
        self._load = load
        self.load_changed()

    def load_changed(self) -> None:
        """The manager's queue changed: the gauges are written now (with worker processes
        a scrape reads them from the workers' files, not from the answering process)."""
        if self._load is None:
            return
        load = self._load()
        self.sessions_in_progress.labels(state="running").set(load.get("running", 0))
        self.sessions_in_progress.labels(state="queued").set(load.get("queued", 0))
        self.queue_depth.set(load.get("queued", 0))

    def exposition(self) -> bytes:
        """The metrics in the Prometheus text format: with worker processes, all of theirs."""
        directory = shared_dir()
        if directory is None:
            return bytes(generate_latest(self.registry))
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)
        return bytes(generate_latest(registry))

    def alert_received(self, source: str) -> None:
        self.alerts_received.labels(source=source).inc()

    def alert_deduplicated(self, source: str) -> None:
        """An alert folded into an existing session (Idempotency-Key, Alertmanager
        fingerprint, ...): call after `alert_received` for the same alert."""
        self.alerts_deduplicated.labels(source=source).inc()

    def tokens_used(self, model: str | None, tokens: int) -> None:
        """Tokens of a finished investigation (its final state's total)."""
        if tokens > 0:
            self.llm_tokens.labels(model=model or "unknown").inc(tokens)

    # --- fed by the events ------------------------------------------------------------

    def observe(self, session_id: str, event: dict[str, Any]) -> None:
        """Fold one progress event of a session into the metrics."""
        kind = event.get("type")
        data = event.get("data") or {}
        if kind == EventType.SESSION_STARTED:
            self._sessions[session_id] = _Session(
                started=time.monotonic(), model=str(data.get("model") or "unknown")
            )
            return
        session = self._sessions.get(session_id)
        if session is None:  # events of a run this process did not see start
            session = self._sessions[session_id] = _Session(time.monotonic(), "unknown")
        if event.get("agent"):
            session.agent = event["agent"]
        if kind == EventType.ITERATION_STARTED:
            if data.get("tools"):  # select_tools asks the model only when it has tools
                self.llm_calls.labels(step="select_tools", model=session.model).inc()
        elif kind in _LLM_STEP_OF_EVENT:
            self.llm_calls.labels(step=_LLM_STEP_OF_EVENT[str(kind)], model=session.model).inc()
        elif kind == EventType.TOOL_CALL_FINISHED:
            self.tool_calls.labels(
                server=data.get("server") or NO_SERVER, outcome=data.get("status") or "unknown"
            ).inc()
        elif kind in (EventType.SESSION_COMPLETED, EventType.SESSION_FAILED):
            del self._sessions[session_id]
            status = "completed" if kind == EventType.SESSION_COMPLETED else "failed"
            agent = session.agent or NO_AGENT
            self.sessions.labels(status=status, agent=agent).inc()
            self.duration.labels(agent=agent, status=status).observe(
                time.monotonic() - session.started
            )
