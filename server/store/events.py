"""Queries on the event log table (`sre_events`): each session's events, numbered 1, 2,
3, … by the live event log (server/eventlog.py), which assigns the seqs. `Store` runs
them in its transactions."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, func, insert, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store.models import EVENTS

Numbered = list[tuple[int, dict[str, Any]]]
"""A session's events with their seqs."""

_IN_CHUNK = 500


def chunks(items: Sequence[str], size: int = _IN_CHUNK) -> Iterator[Sequence[str]]:
    """`items` in slices small enough for an `IN (…)` list."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def insert_new(
    conn: AsyncConnection, batches: Mapping[str, Numbered], now: datetime
) -> set[str]:
    """Insert the events whose seq is above their session's stored last (so a retried
    batch is harmless and seqs only grow); returns the sessions that got any."""
    last = await last_seqs(conn, list(batches))
    rows = [
        {
            "session_id": session_id,
            "seq": seq,
            "type": str(event.get("type") or ""),
            "data": event,
            "created_at": now,
        }
        for session_id, events in batches.items()
        for seq, event in events
        if seq > last.get(session_id, 0)
    ]
    if rows:
        await conn.execute(insert(EVENTS), rows)
    return {str(row["session_id"]) for row in rows}


async def after(conn: AsyncConnection, session_id: str, after_seq: int, limit: int) -> Numbered:
    """The session's events with seq > `after_seq`, in order, at most `limit` of them."""
    query = (
        select(EVENTS.c.seq, EVENTS.c.data)
        .where(EVENTS.c.session_id == session_id, EVENTS.c.seq > after_seq)
        .order_by(EVENTS.c.seq)
        .limit(max(0, limit))
    )
    return [(row.seq, row.data) for row in (await conn.execute(query)).all()]


async def last_seqs(conn: AsyncConnection, session_ids: list[str]) -> dict[str, int]:
    """Each session's latest seq; sessions without events are left out."""
    found: dict[str, int] = {}
    for chunk in chunks(session_ids):
        query = (
            select(EVENTS.c.session_id, func.max(EVENTS.c.seq))
            .where(EVENTS.c.session_id.in_(chunk))
            .group_by(EVENTS.c.session_id)
        )
        found.update((sid, int(seq)) for sid, seq in (await conn.execute(query)).all())
    return found


async def last_seq(conn: AsyncConnection, session_id: str) -> int:
    """The seq of the session's latest event; 0 when it has none."""
    query = select(func.coalesce(func.max(EVENTS.c.seq), 0)).where(
        EVENTS.c.session_id == session_id
    )
    return int((await conn.execute(query)).scalar_one())


_ROWID: ColumnElement[int] = literal_column("rowid", Integer)


async def last_rowid(conn: AsyncConnection) -> int:
    """SQLite only: the rowid of the event stored last (0 when none is)."""
    return int((await conn.execute(select(func.max(_ROWID)).select_from(EVENTS))).scalar() or 0)


async def sessions_since(conn: AsyncConnection, rowid: int, limit: int) -> tuple[int, set[str]]:
    """SQLite only: the sessions of the events stored after the one with `rowid` (at most
    `limit` events), and the rowid to ask from next. One writer at a time commits to a
    SQLite file, so rowids grow in the order the events became visible."""
    query = (
        select(_ROWID, EVENTS.c.session_id)
        .where(rowid < _ROWID)
        .order_by(_ROWID)
        .limit(max(1, limit))
    )
    rows = (await conn.execute(query)).all()
    return (int(rows[-1][0]) if rows else rowid), {str(row[1]) for row in rows}
