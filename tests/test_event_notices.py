"""On PostgreSQL, a replica's event stream of a session another replica runs follows the
stored events at once (LISTEN/NOTIFY), not at its next poll; and it keeps doing so after
its listening connection was cut."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from graph.events import EventType, make_event
from server import eventlog
from server.eventlog import EventLog
from server.store import Store
from server.store.notices import EventNotices

POLL = 120.0
"""The streams' poll interval in these tests: far beyond their time limits, so an event
can only arrive in time through a notice."""


@pytest.fixture
async def replicas(pg_database: str, monkeypatch: pytest.MonkeyPatch):
    """Two replicas' stores and event logs on one database: `a` runs the session and
    writes its events, `b` listens."""
    monkeypatch.setattr(eventlog, "_DB_POLL_SECONDS", POLL)
    store_a, store_b = await Store.open(pg_database), await Store.open(pg_database)
    notices = EventNotices.for_url(store_b.engine.url)
    assert notices is not None
    a = EventLog(store_a, holder="a")
    b = EventLog(store_b, holder="b", notices=notices)
    await a.start()
    await b.start()
    await asyncio.wait_for(notices.listening.wait(), 10)
    try:
        yield a, b, notices
    finally:
        await b.aclose()
        await a.aclose()
        await store_a.close()
        await store_b.close()


async def _stream(log: EventLog, session_id: str, into: list[dict[str, Any]]) -> None:
    async for _, event in log.subscribe(session_id):
        into.append(event)


async def _until(condition: Any, seconds: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {seconds} s")


@pytest.mark.postgres
async def test_a_stream_of_a_session_running_elsewhere_follows_its_events(replicas) -> None:
    a, b, _ = replicas
    await a.open("s1", new=True)
    seen: list[dict[str, Any]] = []
    stream = asyncio.create_task(_stream(b, "s1", seen))
    await asyncio.sleep(0.2)  # b read the database, found nothing, and waits
    await a.append("s1", make_event(EventType.SESSION_STARTED))
    await _until(lambda: len(seen) == 1)
    await a.append("s1", make_event(EventType.ITERATION_STARTED, iteration=1))
    await a.append("s1", make_event(EventType.SESSION_COMPLETED, agent="kubernetes"))
    await asyncio.wait_for(stream, 10)  # ended with the terminal event
    assert [e["type"] for e in seen] == [
        "session_started",
        "iteration_started",
        "session_completed",
    ]


@pytest.mark.postgres
async def test_streams_follow_again_after_the_listening_connection_was_cut(
    replicas, pg_database: str
) -> None:
    a, b, notices = replicas
    await a.open("s2", new=True)
    seen: list[dict[str, Any]] = []
    stream = asyncio.create_task(_stream(b, "s2", seen))
    await asyncio.sleep(0.2)

    admin = pg_database.replace("postgresql+psycopg://", "postgresql://")
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE 'LISTEN%%'"
        )
    await _until(lambda: not notices.listening.is_set())
    await a.append("s2", make_event(EventType.SESSION_STARTED))  # while nobody listens
    await asyncio.wait_for(notices.listening.wait(), 10)  # back, and everyone read again
    await _until(lambda: len(seen) == 1)
    await a.append("s2", make_event(EventType.SESSION_FAILED, error="boom"))
    await asyncio.wait_for(stream, 10)
    assert [e["type"] for e in seen] == ["session_started", "session_failed"]


async def test_sqlite_has_no_notices(tmp_path) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/h.db")
    try:
        assert EventNotices.for_url(store.engine.url) is None
    finally:
        await store.close()
