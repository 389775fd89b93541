"""Fencing: the writes a replica makes for the sessions it runs (index updates, events)
land only while no other replica holds the session.

A replica notices that another took a session over at its next lease renewal (every third
of a lease; server/replica.py). A replica that was paused, or cut off from the database,
for longer than a lease may go on running a session until then, and what it wrote in
that time would mix with the new holder's writes: a status of "completed" over a run
still in progress, events numbered twice. Its writes therefore carry its replica id
(`holder`), and those for an unfinished session another replica holds are dropped in the
same transaction. A finished session is not fenced: anyone may annotate it (Alertmanager's
"resolved"), and a session nobody holds (released, or written before leases) is not
either. Checkpoints are not fenced: the new holder resumes from the checkpoint it read
when it took the session over, and a late checkpoint of the old holder only adds an
unused branch to the session's history."""

from __future__ import annotations

from collections.abc import Sequence

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
    """Those of `session_ids` that `holder` must not write to now."""
    found: set[str] = set()
    for chunk in chunks(session_ids):
        query = select(SESSIONS.c.session_id).where(
            SESSIONS.c.session_id.in_(chunk), held_elsewhere(holder)
        )
        found.update((await conn.execute(query)).scalars().all())
    return found
