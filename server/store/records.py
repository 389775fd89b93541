"""`SessionRecord`: one row of the session index as a plain dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

QUEUED = "queued"
PROCESSING = "processing"
COMPLETED = "completed"
FAILED = "failed"
STATUSES: tuple[str, ...] = (QUEUED, PROCESSING, COMPLETED, FAILED)
UNFINISHED: tuple[str, ...] = (QUEUED, PROCESSING)
FINISHED: tuple[str, ...] = (COMPLETED, FAILED)


@dataclass
class SessionRecord:
    """An investigation session; `session_id` is also the LangGraph thread id.

    Datetimes are timezone-aware UTC."""

    session_id: str
    alert_id: str
    alert_type: str
    status: str
    started_at: datetime
    updated_at: datetime
    agent_type: str | None = None
    progress: int = 0
    current_step: str = ""
    assigned_mcp_servers: list[str] = field(default_factory=list)
    alert_data: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    result_markdown: str | None = None
    error_message: str | None = None
    model: str | None = None
    iterations: int = 0
    tokens: int = 0
    completed_at: datetime | None = None
    parent_session_id: str | None = None
    parent_checkpoint_id: str | None = None
    idempotency_key: str | None = None
    session_metadata: dict[str, Any] = field(default_factory=dict)
    fingerprint: str | None = None  # the source alert's identity (Alertmanager's fingerprint)
    owner: str | None = None  # the replica running it (`REPLICA_ID`), while unfinished
    lease_expires_at: datetime | None = None  # the owner's claim, renewed while it runs

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every attribute, datetimes as ISO 8601 strings (UTC, microseconds)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = value.isoformat(timespec="microseconds")
            out[f.name] = value
        return out

    @property
    def finished(self) -> bool:
        return self.status in FINISHED
