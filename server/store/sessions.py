"""Queries on the session index table (`sre_sessions`): functions of a SQLAlchemy
`Connection` that `Store` runs in its transactions (database.py)."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Update, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from server.store.errors import DuplicateSession
from server.store.events import chunks
from server.store.fencing import held_elsewhere
from server.store.models import EVENTS, SESSIONS
from server.store.records import FINISHED, SessionRecord

SESSION_ID = "b_session_id"
"""The bound parameter naming the session an executemany update row is for."""


def by_column(conn: Connection, column: str, value: Any) -> SessionRecord | None:
    """The session whose `column` is `value` (a unique column)."""
    return first(conn, _by(column), {"value": value})


def first(
    conn: Connection, query: Select[Any], params: dict[str, Any] | None = None
) -> SessionRecord | None:
    row = conn.execute(query, params).mappings().first()
    return None if row is None else SessionRecord(**row)


def every(conn: Connection, query: Select[Any]) -> list[SessionRecord]:
    return [SessionRecord(**row) for row in conn.execute(query).mappings().all()]


def page(
    conn: Connection, query: Select[Any], count: Select[Any]
) -> tuple[list[SessionRecord], int]:
    """The sessions `query` selects, and how many `count` counts (one snapshot)."""
    return every(conn, query), int(conn.execute(count).scalar_one())


def status_counts(conn: Connection) -> list[tuple[str, int]]:
    return [(str(status), int(n)) for status, n in conn.execute(_status_counts()).all()]


def insert_rows(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert `rows`: one `executemany` per set of columns."""
    by_columns: dict[frozenset[str], list[dict[str, Any]]] = {}
    for values in rows:
        by_columns.setdefault(frozenset(values), []).append(values)
    for same in by_columns.values():
        conn.execute(insert(SESSIONS), same)


def duplicate(conn: Connection, record: SessionRecord) -> DuplicateSession | None:
    """Which unique key `record` collided with, or None when it was something else."""
    keys = (
        ("session_id", record.session_id),
        ("alert_id", record.alert_id),
        ("idempotency_key", record.idempotency_key),
    )
    for name, value in keys:
        if value is None:
            continue
        existing = by_column(conn, name, value)
        if existing is not None:
            return DuplicateSession(name, value, existing)
    return None


def update_groups(conn: Connection, groups: list[list[dict[str, Any]]], fenced: bool) -> list[str]:
    """Each group (rows that change the same columns, each naming its session as
    `SESSION_ID`) in one executemany; the ids of the sessions not updated. `fenced`: the
    rows name their `HOLDER` too, and sessions another replica holds are not updated
    (fencing.py)."""
    statement = _update(fenced)
    missing: list[str] = []
    for rows in groups:
        if conn.execute(statement, rows).rowcount == len(rows):
            continue
        for row in rows:  # some not updated: which (writing them again is harmless)
            if conn.execute(statement, [row]).rowcount == 0:
                missing.append(row[SESSION_ID])
    return missing


def prune(conn: Connection, older_than: datetime) -> list[str]:
    """Delete the finished sessions started before `older_than`, and their events; their
    ids."""
    query = select(SESSIONS.c.session_id).where(
        SESSIONS.c.status.in_(FINISHED), SESSIONS.c.started_at < older_than
    )
    ids = list(conn.execute(query).scalars().all())
    for chunk in chunks(ids):
        conn.execute(delete(EVENTS).where(EVENTS.c.session_id.in_(chunk)))
        conn.execute(delete(SESSIONS).where(SESSIONS.c.session_id.in_(chunk)))
    return ids


# Statements built once: building one took longer than running it.


@functools.lru_cache(maxsize=2)
def _update(fenced: bool) -> Update:
    fence = [~held_elsewhere()] if fenced else []
    return update(SESSIONS).where(SESSIONS.c.session_id == bindparam(SESSION_ID), *fence)


@functools.lru_cache(maxsize=4)
def _by(column: str) -> Select[Any]:
    return select(SESSIONS).where(SESSIONS.c[column] == bindparam("value"))


@functools.cache
def _status_counts() -> Select[Any]:
    return select(SESSIONS.c.status, func.count()).group_by(SESSIONS.c.status)
