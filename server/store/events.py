"""Queries on the event log table (`sre_events`): each session's events, numbered 1, 2,
3, … by the live event log (server/eventlog.py), which assigns the seqs. `Store` runs
them in its transactions (database.py)."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    bindparam,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.engine import Connection

from server.store.models import EVENTS

Numbered = list[tuple[int, dict[str, Any]]]
"""A session's events with their seqs."""

_IN_CHUNK = 500


def chunks(items: Sequence[str], size: int = _IN_CHUNK) -> Iterator[Sequence[str]]:
    """`items` in slices small enough for an `IN (…)` list."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def insert_new(conn: Connection, batches: Mapping[str, Numbered], now: datetime) -> set[str]:
    """Insert the events whose seq is above their session's stored last (so a retried
    batch is harmless and seqs only grow); returns the sessions that got any."""
    last = last_seqs(conn, list(batches))
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
        conn.execute(insert(EVENTS), rows)
    return {str(row["session_id"]) for row in rows}


def after(conn: Connection, session_id: str, after_seq: int, limit: int) -> Numbered:
    """The session's events with seq > `after_seq`, in order, at most `limit` of them."""
    params = {"session_id": session_id, "after": after_seq, "limit": max(0, limit)}
    return [(row.seq, row.data) for row in conn.execute(_after(), params).all()]


def last_seqs(conn: Connection, session_ids: list[str]) -> dict[str, int]:
    """Each session's latest seq; sessions without events are left out."""
    found: dict[str, int] = {}
    for chunk in chunks(session_ids):
        rows = conn.execute(_last_seqs(), {"ids": list(chunk)}).all()
        found.update((sid, int(seq)) for sid, seq in rows)
    return found


def last_seq(conn: Connection, session_id: str) -> int:
    """The seq of the session's latest event; 0 when it has none."""
    return int(conn.execute(_last_seq(), {"session_id": session_id}).scalar_one())


_ROWID: ColumnElement[int] = literal_column("rowid", Integer)


def last_rowid(conn: Connection) -> int:
    """SQLite only: the rowid of the event stored last (0 when none is)."""
    return int(conn.execute(select(func.max(_ROWID)).select_from(EVENTS)).scalar() or 0)


def sessions_since(conn: Connection, rowid: int, limit: int) -> tuple[int, set[str]]:
    """SQLite only: the sessions of the events stored after the one with `rowid` (at most
    `limit` events), and the rowid to ask from next. One writer at a time commits to a
    SQLite file, so rowids grow in the order the events became visible."""
    rows = conn.execute(_since(), {"rowid": rowid, "limit": max(1, limit)}).all()
    return (int(rows[-1][0]) if rows else rowid), {str(row[1]) for row in rows}


# Statements built once: building one took longer than running it.


@functools.cache
def _after() -> Select[Any]:
    return (
        select(EVENTS.c.seq, EVENTS.c.data)
        .where(EVENTS.c.session_id == bindparam("session_id"), EVENTS.c.seq > bindparam("after"))
        .order_by(EVENTS.c.seq)
        .limit(bindparam("limit"))
    )


@functools.cache
def _last_seqs() -> Select[Any]:
    sid = EVENTS.c.session_id
    ids = bindparam("ids", expanding=True, type_=String)
    return select(sid, func.max(EVENTS.c.seq)).where(sid.in_(ids)).group_by(sid)


@functools.cache
def _last_seq() -> Select[Any]:
    last = func.coalesce(func.max(EVENTS.c.seq), 0)
    return select(last).where(EVENTS.c.session_id == bindparam("session_id"))


@functools.cache
def _since() -> Select[Any]:
    return (
        select(_ROWID, EVENTS.c.session_id)
        .where(bindparam("rowid") < _ROWID)
        .order_by(_ROWID)
        .limit(bindparam("limit"))
    )
