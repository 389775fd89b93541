"""The session index (sre_sessions) and the event log (sre_events).

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.JSON:
    return sa.JSON(none_as_null=True)


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sre_sessions",
        sa.Column("session_id", sa.String(), nullable=False),
        sa.Column("alert_id", sa.String(), nullable=False),
        sa.Column("alert_type", sa.String(), nullable=False),
        sa.Column("agent_type", sa.String(), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("progress", sa.Integer(), server_default="0", nullable=False),
        sa.Column("current_step", sa.Text(), server_default="", nullable=False),
        sa.Column("assigned_mcp_servers", _json(), nullable=False),
        sa.Column("alert_data", _json(), nullable=False),
        sa.Column("result", _json(), nullable=True),
        sa.Column("result_markdown", sa.Text(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("model", sa.String(), nullable=True),
        sa.Column("iterations", sa.Integer(), server_default="0", nullable=False),
        sa.Column("tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("started_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.Column("completed_at", _ts(), nullable=True),
        sa.Column("parent_session_id", sa.String(), nullable=True),
        sa.Column("parent_checkpoint_id", sa.String(), nullable=True),
        sa.Column("idempotency_key", sa.String(), nullable=True),
        sa.Column("session_metadata", _json(), nullable=False),
        sa.PrimaryKeyConstraint("session_id", name="pk_sre_sessions"),
        sa.UniqueConstraint("alert_id", name="uq_sre_sessions_alert_id"),
        sa.UniqueConstraint("idempotency_key", name="uq_sre_sessions_idempotency_key"),
    )
    for column in ("status", "agent_type", "alert_type", "started_at", "parent_session_id"):
        op.create_index(f"ix_sre_sessions_{column}", "sre_sessions", [column])

    op.create_table(
        "sre_events",
        sa.Column("session_id", sa.String(), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("data", _json(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("session_id", "seq", name="pk_sre_events"),
    )


def downgrade() -> None:
    op.drop_table("sre_events")
    for column in ("status", "agent_type", "alert_type", "started_at", "parent_session_id"):
        op.drop_index(f"ix_sre_sessions_{column}", table_name="sre_sessions")
    op.drop_table("sre_sessions")
