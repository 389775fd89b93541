"""SQLAlchemy 2 declarative tables: `sre_sessions` (the session index) and `sre_events`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, Index, Integer, MetaData, String, Table, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Every table this package owns starts with it: LangGraph's checkpoint tables share the database.
TABLE_PREFIX = "sre_"
VERSION_TABLE = "sre_alembic_version"

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def as_utc(value: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes with microseconds on every backend.

    PostgreSQL stores `timestamptz`; SQLite has no time zones, so the value is stored as
    naive UTC text (which sorts chronologically) and made aware again on the way out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


def json_type() -> JSON:
    # none_as_null: Python None is SQL NULL, not the JSON literal `null`.
    return JSON(none_as_null=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class SessionRow(Base):
    __tablename__ = "sre_sessions"

    session_id: Mapped[str] = mapped_column(String, primary_key=True)
    alert_id: Mapped[str] = mapped_column(String, unique=True)
    alert_type: Mapped[str] = mapped_column(String)
    agent_type: Mapped[str | None] = mapped_column(String)
    status: Mapped[str] = mapped_column(String(32))
    progress: Mapped[int] = mapped_column(Integer, server_default="0")
    current_step: Mapped[str] = mapped_column(Text, server_default="")
    assigned_mcp_servers: Mapped[list[str]] = mapped_column(json_type())
    alert_data: Mapped[dict[str, Any]] = mapped_column(json_type())
    result: Mapped[dict[str, Any] | None] = mapped_column(json_type())
    result_markdown: Mapped[str | None] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String)
    iterations: Mapped[int] = mapped_column(Integer, server_default="0")
    tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    parent_session_id: Mapped[str | None] = mapped_column(String)
    parent_checkpoint_id: Mapped[str | None] = mapped_column(String)
    idempotency_key: Mapped[str | None] = mapped_column(String, unique=True)
    session_metadata: Mapped[dict[str, Any]] = mapped_column(json_type())
    fingerprint: Mapped[str | None] = mapped_column(String)
    owner: Mapped[str | None] = mapped_column(String)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index(None, "status"),
        Index(None, "agent_type"),
        Index(None, "alert_type"),
        Index(None, "started_at"),
        Index(None, "parent_session_id"),
        Index(None, "fingerprint"),
        # the history list filters on one of these and pages by started_at
        Index("ix_sre_sessions_status_started_at", "status", "started_at"),
        Index("ix_sre_sessions_alert_type_started_at", "alert_type", "started_at"),
        Index("ix_sre_sessions_agent_type_started_at", "agent_type", "started_at"),
    )


class EventRow(Base):
    __tablename__ = "sre_events"

    session_id: Mapped[str] = mapped_column(String, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String)
    data: Mapped[dict[str, Any]] = mapped_column(json_type())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


SESSIONS: Table = SessionRow.__table__  # type: ignore[assignment]
EVENTS: Table = EventRow.__table__  # type: ignore[assignment]
SESSION_COLUMNS: frozenset[str] = frozenset(SESSIONS.c.keys())
