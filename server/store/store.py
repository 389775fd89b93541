"""`Store`: the session index and the durable, per-session sequenced event log."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, Self

from sqlalchemy import ColumnElement, func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from graph.write_batches import GroupCommit
from server.store import events, migrate, notices, sessions
from server.store.database import Database, EngineDatabase, Operation, P, SqliteFile, T
from server.store.engine import create_engine, masked_url, sqlite_file
from server.store.errors import SessionNotFound
from server.store.fencing import HOLDER, sessions_held_elsewhere
from server.store.models import SESSION_COLUMNS, SESSIONS, as_utc
from server.store.records import FINISHED, STATUSES, UNFINISHED, SessionRecord

# Columns `update_session` may not change.
_FROZEN_COLUMNS = frozenset({"session_id"})
_TERMINAL = frozenset(FINISHED)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _columns(record: SessionRecord) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in fields(record)}


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown session status {status!r}: expected one of {STATUSES}")


class Store:
    """The session index (`sre_sessions`) and event log (`sre_events`) in SQLite or PostgreSQL.

    `Store(url)` only builds the engine; `await Store.open(url)` also runs the migrations and
    is what the application uses. All datetimes in and out are aware UTC (naive ones are taken
    to be UTC). Each operation is a function of a SQLAlchemy `Connection`, run by `read` or
    `write` (database.py); the engine (`engine`) serves the migrations."""

    def __init__(self, url: str) -> None:
        self.write_lock: asyncio.Lock | None = None  # see write
        self._engine: AsyncEngine = create_engine(url)
        path = sqlite_file(url)
        self.db: Database = EngineDatabase(self._engine) if path is None else SqliteFile(path)
        self.url: str = masked_url(url)
        self._append_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        # new sessions' rows, those asked for meanwhile committed together (a burst of
        # alerts waited for a transaction each on SQLite's one write lock)
        self._inserts = GroupCommit(self._insert_sessions, name="session inserts")

    async def read(self, fn: Operation[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(connection, ...)` in a read transaction (the store's own operations, and its
        companions': leases.py, notices.py)."""
        return await self.db.read(fn, *args, **kwargs)

    async def write(self, fn: Operation[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(connection, ...)` in a write transaction. With SQLite, writers queue on
        `write_lock` (shared with the checkpointer): SQLite has one write lock, and its busy
        handler sleeps in growing steps, which under load becomes a convoy and then
        "database is locked"."""
        if self.write_lock is None or self.dialect != "sqlite":
            return await self.db.write(fn, *args, **kwargs)
        async with self.write_lock:
            return await self.db.write(fn, *args, **kwargs)

    @classmethod
    async def open(cls, url: str) -> Store:
        """Connect and bring the schema to the latest revision (existing rows are kept)."""
        store = cls(url)
        try:
            await migrate.upgrade(store._engine)
            if isinstance(store.db, SqliteFile):
                await store._engine.dispose()  # its connection (a thread) is not needed now
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        await self.db.aclose()
        await self._engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @property
    def dialect(self) -> str:
        """The dialect name: "sqlite" or "postgresql"."""
        return self._engine.dialect.name

    async def ping(self) -> None:
        """Raise (a SQLAlchemy `OperationalError`, typically) when the database is unreachable."""
        await self.read(_ping)

    # -- sessions ---------------------------------------------------------------------------

    async def create_session(
        self,
        *,
        session_id: str,
        alert_id: str,
        alert_type: str,
        alert_data: dict[str, Any],
        status: str = "queued",
        agent_type: str | None = None,
        model: str | None = None,
        idempotency_key: str | None = None,
        parent_session_id: str | None = None,
        parent_checkpoint_id: str | None = None,
        session_metadata: dict[str, Any] | None = None,
        fingerprint: str | None = None,
        owner: str | None = None,
        lease_expires_at: datetime | None = None,
    ) -> SessionRecord:
        """Insert a session; `DuplicateSession` if its id, alert id or idempotency key is taken.
        `owner`, `lease_expires_at`: the replica that runs it, and until when (leases.py)."""
        _check_status(status)
        now = utcnow()
        record = SessionRecord(
            session_id=session_id,
            alert_id=alert_id,
            alert_type=alert_type,
            status=status,
            started_at=now,
            updated_at=now,
            agent_type=agent_type,
            alert_data=alert_data,
            model=model,
            idempotency_key=idempotency_key,
            parent_session_id=parent_session_id,
            parent_checkpoint_id=parent_checkpoint_id,
            session_metadata=dict(session_metadata or {}),
            completed_at=now if status in _TERMINAL else None,
            fingerprint=fingerprint,
            owner=owner,
            lease_expires_at=lease_expires_at,
        )
        try:
            # NULLs are left to the column defaults: a row can still be written to a
            # schema one revision behind (columns added later are all nullable).
            values = {k: v for k, v in _columns(record).items() if v is not None}
            await self._inserts.write(values)
        except IntegrityError as exc:
            duplicate = await self.read(sessions.duplicate, record)
            if duplicate is None:
                raise
            raise duplicate from exc
        return record

    async def _insert_sessions(self, rows: list[dict[str, Any]]) -> None:
        await self.write(sessions.insert_rows, rows)

    async def update_session(self, session_id: str, **fields: Any) -> None:
        """Set the given columns; `updated_at` is set to now unless given.

        Moving to completed/failed also sets `completed_at` unless given. Unknown columns or
        statuses raise `ValueError`; a missing session raises `SessionNotFound`."""
        if await self.update_sessions({session_id: fields}):
            raise SessionNotFound(session_id)

    async def update_sessions(
        self, updates: Mapping[str, Mapping[str, Any]], *, holder: str | None = None
    ) -> list[str]:
        """`update_session` for several sessions in one transaction; returns the ids of
        sessions not updated: they do not exist, or (`holder`: the replica writing, see
        fencing.py) another replica holds them now."""
        # One executemany per set of columns changed (a burst's updates share a few): a
        # 200-alert burst wrote 19 statements, not 1,201 (one per session per batch).
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for session_id, changed in updates.items():
            values = _session_values(changed)
            row = {sessions.SESSION_ID: session_id, **values}
            if holder is not None:
                row[HOLDER] = holder
            groups.setdefault(tuple(values), []).append(row)
        return await self.write(sessions.update_groups, list(groups.values()), holder is not None)

    async def get_session(self, session_id: str) -> SessionRecord | None:
        return await self.read(sessions.by_column, "session_id", session_id)

    async def get_session_by_alert_id(self, alert_id: str) -> SessionRecord | None:
        return await self.read(sessions.by_column, "alert_id", alert_id)

    async def get_session_by_idempotency_key(self, key: str) -> SessionRecord | None:
        return await self.read(sessions.by_column, "idempotency_key", key)

    async def latest_session_by_fingerprint(self, fingerprint: str) -> SessionRecord | None:
        """The most recently started session for an alert fingerprint, if any."""
        query = (
            select(SESSIONS)
            .where(SESSIONS.c.fingerprint == fingerprint)
            .order_by(SESSIONS.c.started_at.desc(), SESSIONS.c.session_id.desc())
            .limit(1)
        )
        return await self.read(sessions.first, query)

    async def list_sessions(
        self,
        *,
        status: str | Sequence[str] | None = None,
        agent_type: str | None = None,
        alert_type: str | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        page: int = 1,
        page_size: int = 20,
    ) -> tuple[list[SessionRecord], int]:
        """One page of sessions, newest first, and how many match in all.

        Filters are AND-combined; `status` may also be a list (any of them);
        the date range is inclusive: start_date <= started_at <= end_date."""
        conditions: list[ColumnElement[bool]] = []
        if isinstance(status, str):
            conditions.append(SESSIONS.c.status == status)
        elif status is not None:
            conditions.append(SESSIONS.c.status.in_(list(status)))
        if agent_type is not None:
            conditions.append(SESSIONS.c.agent_type == agent_type)
        if alert_type is not None:
            conditions.append(SESSIONS.c.alert_type == alert_type)
        if start_date is not None:
            conditions.append(SESSIONS.c.started_at >= as_utc(start_date))
        if end_date is not None:
            conditions.append(SESSIONS.c.started_at <= as_utc(end_date))
        page = max(1, page)
        page_size = max(1, page_size)
        query = (
            select(SESSIONS)
            .where(*conditions)
            .order_by(SESSIONS.c.started_at.desc(), SESSIONS.c.session_id)
            .limit(page_size)
            .offset((page - 1) * page_size)
        )
        count = select(func.count()).select_from(SESSIONS).where(*conditions)
        return await self.read(sessions.page, query, count)

    async def unfinished_sessions(self) -> list[SessionRecord]:
        """Queued or processing sessions, oldest first (to resume after a restart)."""
        query = (
            select(SESSIONS)
            .where(SESSIONS.c.status.in_(UNFINISHED))
            .order_by(SESSIONS.c.started_at, SESSIONS.c.session_id)
        )
        return await self.read(sessions.every, query)

    # -- events -----------------------------------------------------------------------------

    async def insert_events(
        self, batches: Mapping[str, events.Numbered], *, holder: str | None = None
    ) -> None:
        """Store events whose seqs the caller assigned (the live event log does), of any
        number of sessions, in one transaction; a seq at or below a session's stored last
        is skipped, so a retried batch is harmless and seqs only grow. `holder` (the
        replica writing): the events of sessions another replica holds now are dropped
        (fencing.py)."""
        batches = {sid: numbered for sid, numbered in batches.items() if numbered}
        if not batches:
            return
        async with contextlib.AsyncExitStack() as locks:
            for session_id in sorted(batches):  # one order: no two callers wait on each other
                await locks.enter_async_context(self._append_lock(session_id))
            await self.write(_insert_events, batches, utcnow(), holder)

    def _append_lock(self, session_id: str) -> asyncio.Lock:
        lock = self._append_locks.get(session_id)
        if lock is None:
            lock = asyncio.Lock()
            self._append_locks[session_id] = lock
        return lock

    async def events_after(
        self, session_id: str, after_seq: int = 0, limit: int = 1000
    ) -> events.Numbered:
        """The session's events with seq > `after_seq`, in order, at most `limit` of them."""
        return await self.read(events.after, session_id, after_seq, limit)

    async def last_seq(self, session_id: str) -> int:
        """The seq of the session's latest event; 0 when it has none."""
        return await self.read(events.last_seq, session_id)

    # -- housekeeping -----------------------------------------------------------------------

    async def prune(self, older_than: datetime) -> list[str]:
        """Delete finished sessions started before `older_than`, and their events.

        Returns their ids, so that the caller can delete their checkpoints."""
        return await self.write(sessions.prune, as_utc(older_than))

    async def stats(self) -> dict[str, Any]:
        """{"total": n, "by_status": {status: n for every status}}."""
        rows = await self.read(sessions.status_counts)
        by_status = dict.fromkeys(STATUSES, 0)
        for status, count in rows:
            by_status[status] = int(count)
        return {"total": sum(by_status.values()), "by_status": by_status}


# -- the operations of more than one table (database.py runs them) ----------------------


def _ping(conn: Connection) -> None:
    conn.execute(text("SELECT 1"))


def _insert_events(
    conn: Connection, batches: Mapping[str, events.Numbered], now: datetime, holder: str | None
) -> None:
    if holder is not None:
        fenced = sessions_held_elsewhere(conn, sorted(batches), holder)
        batches = {sid: b for sid, b in batches.items() if sid not in fenced}
    stored = events.insert_new(conn, batches, now)
    notices.notify(conn, stored)  # streams on other replicas follow


def _session_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Checked column values of an update, with `updated_at` (and `completed_at` when the
    session ends) filled in."""
    unknown = set(fields) - SESSION_COLUMNS
    frozen = set(fields) & _FROZEN_COLUMNS
    if unknown or frozen:
        raise ValueError(f"cannot update session columns {sorted(unknown | frozen)}")
    values = dict(fields)
    now = utcnow()
    values.setdefault("updated_at", now)
    if "status" in values:
        _check_status(values["status"])
        if values["status"] in _TERMINAL:
            values.setdefault("completed_at", now)
    if values.get("progress") is not None:
        values["progress"] = max(0, min(100, int(values["progress"])))
    return values
