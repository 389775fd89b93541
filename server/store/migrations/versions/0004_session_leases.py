"""sre_sessions.owner, .lease_expires_at: which replica runs an unfinished session, and
until when its claim holds (renewed while it runs).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: existing rows get NULL (no owner: any replica may resume them).
    op.add_column("sre_sessions", sa.Column("owner", sa.String(), nullable=True))
    op.add_column(
        "sre_sessions", sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("sre_sessions") as batch:  # SQLite: copy-and-move
        batch.drop_column("lease_expires_at")
        batch.drop_column("owner")
