"""Fencing: what a replica writes for the sessions it runs (index updates, events,
checkpoints) lands only while no other replica holds the session.

A replica notices that another took a session over at its next lease renewal (every third
of a lease; server/replica.py). A replica that was paused, or cut off from the database,
for longer than a lease may go on running a session until then, and what it wrote in that
time would mix with the new holder's writes: a status of "completed" over a run still in
progress, events numbered twice, checkpoints of two runs in one history. So its writes
carry its replica id (`holder`), and those for an unfinished session another replica holds
are dropped in the transaction that would write them. With SQLite that transaction holds
the write lock from its start, so no takeover commits in between. With PostgreSQL the
sessions' rows are not locked (locking them in every write would make the writers of the
index, the events and the checkpoints deadlock each other): a takeover that commits in the
milliseconds between the check and the commit lets that one batch through. A finished
session is not fenced: anyone may annotate it (Alertmanager's "resolved"); nor is a
session nobody holds (released, or written before leases)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, String, and_, bindparam, or_, select
from sqlalchemy.engine import Connection

from server.store.events import chunks
from server.store.models import SESSIONS
from server.store.records import UNFINISHED

HOLDER = "holder"
"""The bound parameter of `held_elsewhere`: the replica writing."""


def held_elsewhere() -> ColumnElement[bool]:
    """An unfinished session that a replica other than the one bound as `HOLDER` holds.
    (The statuses are compared one by one rather than with `IN`: SQLAlchemy's expanding
    `IN` parameter cannot be part of an executemany, as the index updates are.)"""
    return and_(
        SESSIONS.c.owner.is_not(None),
        SESSIONS.c.owner != bindparam(HOLDER),
        or_(*(SESSIONS.c.status == status for status in UNFINISHED)),
    )


@functools.cache  # built once: building it took longer than running it
def _held_query() -> Select[Any]:
    ids = bindparam("ids", expanding=True, type_=String)
    return select(SESSIONS.c.session_id).where(SESSIONS.c.session_id.in_(ids), held_elsewhere())


def sessions_held_elsewhere(conn: Connection, session_ids: Sequence[str], holder: str) -> set[str]:
    """Those of `session_ids` that `holder` must not write to now."""
    found: set[str] = set()
    for chunk in chunks(session_ids):
        rows = conn.execute(_held_query(), {"ids": list(chunk), HOLDER: holder})
        found.update(rows.scalars().all())
    return found


@dataclass(frozen=True)
class CheckpointFence:
    """The fence as one SQL query of its own: the checkpoint savers' (graph/thread_fence.py:
    a thread is a session)."""

    holder: str

    def query(self, thread_ids: Sequence[str], placeholder: str) -> tuple[str, tuple[Any, ...]]:
        ids = ", ".join([placeholder] * len(thread_ids))
        statuses = ", ".join([placeholder] * len(UNFINISHED))
        sql = (
            f"SELECT session_id AS thread_id FROM {SESSIONS.name} WHERE session_id IN ({ids}) "
            f"AND owner IS NOT NULL AND owner <> {placeholder} AND status IN ({statuses})"
        )
        return sql, (*thread_ids, self.holder, *UNFINISHED)
