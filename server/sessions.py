"""What the service knows about a session while it runs: the seed's ProcessingStatus,
kept in memory and mirrored to the session index."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from graph.events import EventType

STEP_LABELS = {
    EventType.SESSION_STARTED: "starting",
    EventType.AGENT_SELECTED: "agent selected",
    EventType.RUNBOOK_FETCHED: "runbook fetched",
    EventType.ITERATION_STARTED: "choosing tools",
    EventType.TOOL_CALL_STARTED: "running tools",
    EventType.TOOL_CALL_FINISHED: "running tools",
    EventType.PARTIAL_ANALYSIS: "partial analysis",
    EventType.FINAL_ANALYSIS: "final analysis",
    EventType.SESSION_COMPLETED: "completed",
    EventType.SESSION_FAILED: "failed",
}


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class SessionState:
    """ProcessingStatus of one session (and the fields the index needs)."""

    session_id: str
    alert_id: str
    alert_type: str
    status: str = "queued"  # queued | processing | completed | failed
    progress: int = 0
    current_step: str = "queued"
    current_agent: str | None = None
    assigned_mcp_servers: list[str] = field(default_factory=list)
    iteration: int = 0
    max_iterations: int = 0
    result: str | None = None
    error: str | None = None
    model: str | None = None
    timestamp: datetime = field(default_factory=now)

    def apply(self, event: dict[str, Any]) -> dict[str, Any]:
        """Fold a progress event in; returns the index columns that changed."""
        kind, data = event.get("type"), event.get("data") or {}
        changed: dict[str, Any] = {}
        if kind in STEP_LABELS:
            step = STEP_LABELS[EventType(kind)]
            if event.get("iteration"):
                step = f"iteration {event['iteration']}: {step}"
            self.current_step = changed["current_step"] = step
        if kind == EventType.SESSION_STARTED and self.status != "processing":
            self.status = changed["status"] = "processing"
        elif kind == EventType.AGENT_SELECTED:
            self.current_agent = changed["agent_type"] = event.get("agent")
            self.assigned_mcp_servers = changed["assigned_mcp_servers"] = data["mcp_servers"]
            self.max_iterations = data["max_iterations"]
            self.progress = 10
        elif kind == EventType.RUNBOOK_FETCHED:
            self.progress = 15
        elif kind == EventType.ITERATION_STARTED:
            self.iteration = changed["iterations"] = event["iteration"]
            self.max_iterations = data["max_iterations"]
            self.progress = 15 + int(75 * (self.iteration - 1) / max(1, self.max_iterations))
        elif kind == EventType.PARTIAL_ANALYSIS:
            self.progress = 15 + int(75 * self.iteration / max(1, self.max_iterations))
        elif kind == EventType.FINAL_ANALYSIS:
            self.progress = 95
        self.progress = max(0, min(100, self.progress))
        changed["progress"] = self.progress
        self.timestamp = now()
        return changed
