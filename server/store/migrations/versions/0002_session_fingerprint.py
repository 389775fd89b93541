"""sre_sessions.fingerprint: the source alert's identity (Alertmanager deduplication).

Revision ID: 0002
Revises: 0001
Create Date: 2025-06-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: existing rows get NULL and are otherwise untouched.
    op.add_column("sre_sessions", sa.Column("fingerprint", sa.String(), nullable=True))
    op.create_index("ix_sre_sessions_fingerprint", "sre_sessions", ["fingerprint"])


def downgrade() -> None:
    op.drop_index("ix_sre_sessions_fingerprint", table_name="sre_sessions")
    with op.batch_alter_table("sre_sessions") as batch:  # SQLite: copy-and-move
        batch.drop_column("fingerprint")
