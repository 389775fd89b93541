"""Storing events on SQLite in one call on the connection's thread.

aiosqlite runs each connection on a thread of its own, and SQLAlchemy's adapter makes a
round trip to it for every cursor, execute, fetch and close: the fencing query, the
last-seq query and the insert of one save took 11 of them (16 with BEGIN and COMMIT), each
a wake-up of the event loop and a wait behind whatever else it had queued. Here the three
run as one function on that thread, inside the transaction SQLAlchemy began. The values
are bound by the columns' own SQLAlchemy types, so the rows are stored exactly as
`events.insert_new` stores them; the rules are the same (fencing.py, events.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import aiosqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from graph.sqlite_thread import in_connection_thread
from server.store.events import Numbered, chunks
from server.store.fencing import CheckpointFence
from server.store.models import EVENTS

_INSERT = (
    f"INSERT INTO {EVENTS.name} (session_id, seq, type, data, created_at) VALUES (?, ?, ?, ?, ?)"
)


async def insert_new(
    conn: AsyncConnection, batches: Mapping[str, Numbered], now: datetime, holder: str | None
) -> set[str]:
    """`events.insert_new` after `fencing.sessions_held_elsewhere` (when `holder` is
    given), in `conn`'s transaction; returns the sessions that got any event."""
    dialect = conn.dialect
    as_data = EVENTS.c.data.type.bind_processor(dialect)
    as_time = EVENTS.c.created_at.type.bind_processor(dialect)
    created = as_time(now) if as_time else now
    rows = {
        session_id: [
            (
                session_id,
                seq,
                str(event.get("type") or ""),
                as_data(event) if as_data else event,
                created,
            )
            for seq, event in numbered
        ]
        for session_id, numbered in batches.items()
    }
    driver = (await conn.get_raw_connection()).driver_connection
    assert isinstance(driver, aiosqlite.Connection)
    try:
        stored: set[str] = await in_connection_thread(driver, _insert_new, rows, holder)
    except sqlite3.Error as exc:  # raised as SQLAlchemy raises a statement's errors
        raise DBAPIError.instance(_INSERT, None, exc, sqlite3.Error) from exc
    return stored


def _insert_new(
    raw: sqlite3.Connection, rows: dict[str, list[tuple[Any, ...]]], holder: str | None
) -> set[str]:
    ids = sorted(rows)
    fenced: set[str] = set()
    if holder is not None:
        fence = CheckpointFence(holder)
        for chunk in chunks(ids):
            sql, params = fence.query(chunk, "?")
            fenced.update(str(row[0]) for row in raw.execute(sql, params))
    kept = [sid for sid in ids if sid not in fenced]
    last: dict[str, int] = {}
    for chunk in chunks(kept):
        sql = (
            f"SELECT session_id, max(seq) FROM {EVENTS.name} WHERE session_id IN "
            f"({', '.join('?' * len(chunk))}) GROUP BY session_id"
        )
        last.update((str(sid), int(seq)) for sid, seq in raw.execute(sql, tuple(chunk)))
    new = [row for sid in kept for row in rows[sid] if row[1] > last.get(sid, 0)]
    if new:
        raw.executemany(_INSERT, new)
    return {str(row[0]) for row in new}
