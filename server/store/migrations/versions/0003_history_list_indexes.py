"""Composite indexes for the history list: (filter column, started_at), so a filtered,
newest-first page comes straight from an index instead of sorting every matching row.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_sre_sessions_status_started_at": ["status", "started_at"],
    "ix_sre_sessions_alert_type_started_at": ["alert_type", "started_at"],
    "ix_sre_sessions_agent_type_started_at": ["agent_type", "started_at"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "sre_sessions", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="sre_sessions")
