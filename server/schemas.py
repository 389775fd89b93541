"""HTTP request and response models (they document the API at /docs)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field


class AlertAccepted(BaseModel):
    alert_id: str
    session_id: str
    status: str
    status_url: str = Field(description="GET: the processing status.")
    events_url: str = Field(description="GET: Server-Sent Events of the investigation.")
    session_url: str = Field(description="GET: the session with its timeline.")


class ProcessingStatus(BaseModel):
    """The seed's ProcessingStatus."""

    alert_id: str
    session_id: str
    status: Literal["queued", "processing", "completed", "failed"]
    progress: int = Field(ge=0, le=100)
    current_step: str
    current_agent: str | None
    assigned_mcp_servers: list[str]
    result: str | None = Field(description="The final analysis as Markdown.")
    error: str | None
    timestamp: datetime


class SessionSummary(BaseModel):
    session_id: str
    alert_id: str
    alert_type: str
    agent_type: str | None
    status: str
    progress: int
    current_step: str | None
    model: str | None
    iterations: int
    tokens: int
    started_at: datetime
    updated_at: datetime | None
    completed_at: datetime | None
    duration_ms: float | None
    error_message: str | None
    parent_session_id: str | None
    parent_checkpoint_id: str | None
    replica: str | None = Field(
        default=None, description="The replica (REPLICA_ID) that runs it, or ran it last."
    )


class SessionList(BaseModel):
    sessions: list[SessionSummary]
    total: int
    page: int
    page_size: int
    pages: int


class LLMInteraction(BaseModel):
    type: Literal["llm_interaction"]
    timestamp: datetime
    checkpoint_id: str
    step: str
    iteration: int
    model: str
    messages: list[dict[str, str]] = Field(description="The prompt: role and content.")
    response: str
    tool_calls: list[dict[str, Any]]
    token_usage: dict[str, int]
    duration_ms: float
    inherited: bool = Field(False, description="Copied from the parent session of a replay.")


class MCPCommunication(BaseModel):
    type: Literal["mcp_communication"]
    timestamp: datetime
    checkpoint_id: str
    step: str
    iteration: int
    ref: str
    server: str | None
    tool: str
    arguments: dict[str, Any]
    result: str
    status: Literal["ok", "error", "refused", "blocked"]
    success: bool
    error: str | None
    size: int
    truncated: bool
    masked: int = Field(0, description="Secrets masked in the result (a count).")
    duration_ms: float
    inherited: bool = False


TimelineEntry = Annotated[LLMInteraction | MCPCommunication, Field(discriminator="type")]


class SessionDetail(SessionSummary):
    alert_data: dict[str, Any]
    assigned_mcp_servers: list[str]
    analysis: dict[str, Any] | None
    result_markdown: str | None
    runbook: dict[str, Any] | None
    timeline: list[TimelineEntry]
    history_available: bool = Field(description="False when the checkpoints are gone.")


class CheckpointEntry(BaseModel):
    checkpoint_id: str
    checkpoint_ns: str
    graph: str
    parent_checkpoint_id: str | None
    step: int
    source: str
    created_at: datetime
    node: str | None = Field(description="The node that ran (or runs next) from it.")
    summary: str
    replayable: bool


class CheckpointList(BaseModel):
    session_id: str
    checkpoints: list[CheckpointEntry]


class ReplayRequest(BaseModel):
    checkpoint_id: str = Field(min_length=1, max_length=64)
    state_changes: dict[str, Any] | None = Field(
        None,
        description="State values to change at that checkpoint, e.g. an edited tool "
        "result ('results') or notes ('notes').",
    )
    model: str | None = Field(None, max_length=200, description='"provider:model" override.')


class HistoryHealth(BaseModel):
    status: Literal["ok", "degraded", "disabled"]
    database: str | None
    error: str | None
    sessions: dict[str, Any] | None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: dict[str, Any]
    mcp_servers: dict[str, dict[str, Any]]
    model: dict[str, Any]
    queue: dict[str, int]
    replica: dict[str, Any] = Field(
        description="This process among the replicas sharing the database: its id "
        "(REPLICA_ID), whether it holds leases, and the sessions queued or running here."
    )
