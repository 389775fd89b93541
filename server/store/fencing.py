"""Fencing: what a replica writes for the sessions it runs (index updates, events,
checkpoints) lands only while no other replica holds the session.

A replica notices that another took a session over at its next lease renewal (every third
of a lease; server/replica.py). A replica that was paused, or cut off from the database,
for longer than a lease may go on running a session until then, and what it wrote in that
time would mix with the new holder's writes: a status of "completed" over a run still in
progress, events numbered twice, checkpoints of two runs in one history. So its writes
carry its replica id (`holder`), and those for an unfinished session another replica holds
are dropped in the transaction that would write them. On PostgreSQL that transaction also
locks the sessions' rows (FOR SHARE), so a takeover waits for it to commit; SQLite runs one
writer at a time. A finished session is not fenced: anyone may annotate it (Alertmanager's
"resolved"); nor is a session nobody holds (released, or written before leases)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.events import chunks
from server.store.models import SESSIONS
from server.store.records import UNFINISHED


def held_elsewhere(holder: str) -> ColumnElement[bool]:
    """An unfinished session that a replica other than `holder` holds."""
    return and_(
        SESSIONS.c.owner.is_not(None),
        SESSIONS.c.owner != holder,
        SESSIONS.c.status.in_(UNFINISHED),
    )


async def sessions_held_elsewhere(
    conn: AsyncConnection, session_ids: Sequence[str], holder: str
) -> set[str]:
    """Those of `session_ids` that `holder` must not write to now; on PostgreSQL, all of
    their rows stay locked (FOR SHARE) until `conn`'s transaction ends."""
    found: set[str] = set()
    for chunk in chunks(session_ids):
        query = (
            select(SESSIONS.c.session_id, held_elsewhere(holder))
            .where(SESSIONS.c.session_id.in_(chunk))
            .with_for_update(read=True)
        )
        found.update(sid for sid, fenced in (await conn.execute(query)).all() if fenced)
    return found


@dataclass(frozen=True)
class CheckpointFence:
    """The checkpoint savers' fence (graph/thread_fence.py): a thread is a session."""

    holder: str
    dialect: str

    def query(self, thread_ids: Sequence[str], placeholder: str) -> tuple[str, tuple[Any, ...]]:
        ids = ", ".join([placeholder] * len(thread_ids))
        statuses = ", ".join([placeholder] * len(UNFINISHED))
        lock = " FOR SHARE" if self.dialect == "postgresql" else ""  # every row written
        sql = (
            "SELECT session_id AS thread_id FROM ("
            f"SELECT session_id, owner, status FROM {SESSIONS.name} "
            f"WHERE session_id IN ({ids}){lock}) AS written "
            f"WHERE owner IS NOT NULL AND owner <> {placeholder} AND status IN ({statuses})"
        )
        return sql, (*thread_ids, self.holder, *UNFINISHED)
