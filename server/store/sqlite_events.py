"""Storing events on a SQLite file in one call on the thread of the store's write
connection (sqlite_writes.py).

SQLAlchemy's aiosqlite adapter made a round trip to the connection's thread for every
cursor, execute, fetch and close: the fencing query, the last-seq query and the insert of
one save took 11 of them, and the transaction around them (pool checkout, BEGIN, COMMIT,
the reset on return) cost more than all the statements. Here the three run as one
function inside a transaction of their own. The values are bound by the columns' own
SQLAlchemy types, so the rows are stored exactly as `events.insert_new` stores them; the
rules are the same (fencing.py, events.py)."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Dialect

from server.store.events import Numbered, chunks
from server.store.fencing import CheckpointFence
from server.store.models import EVENTS
from server.store.sqlite_writes import SqliteWrites

_INSERT = (
    f"INSERT INTO {EVENTS.name} (session_id, seq, type, data, created_at) VALUES (?, ?, ?, ?, ?)"
)


async def insert_new(
    writes: SqliteWrites,
    dialect: Dialect,
    batches: Mapping[str, Numbered],
    now: datetime,
    holder: str | None,
) -> set[str]:
    """`events.insert_new` after `fencing.sessions_held_elsewhere` (when `holder` is
    given), in a transaction of `writes`; returns the sessions that got any event."""
    as_data, as_time = _binders(dialect)
    created = as_time(now)
    rows = {
        session_id: [
            (session_id, seq, str(event.get("type") or ""), as_data(event), created)
            for seq, event in numbered
        ]
        for session_id, numbered in batches.items()
    }
    stored: set[str] = await writes.transaction(_INSERT, _insert_new, rows, holder)
    return stored


@functools.lru_cache(maxsize=8)  # one dialect per engine
def _binders(dialect: Dialect) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """How the `data` and `created_at` columns' types bind a value on `dialect`."""

    def bound(column: Column[Any]) -> Callable[[Any], Any]:
        return column.type.bind_processor(dialect) or (lambda value: value)

    return bound(EVENTS.c.data), bound(EVENTS.c.created_at)


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
