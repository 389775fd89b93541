"""A replica's event stream of a session another replica (or another worker of the same
service) runs follows the stored events at once, not at its next poll: on PostgreSQL
through LISTEN/NOTIFY, and it keeps doing so after its listening connection was cut; on
SQLite through one task asking the file for new events while streams wait."""

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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/history.db"
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture
async def replicas(database: str, monkeypatch: pytest.MonkeyPatch):
    """Two replicas' stores and event logs on one database: `a` runs the session and
    writes its events, `b` follows them."""
    monkeypatch.setattr(eventlog, "_DB_POLL_SECONDS", POLL)
    store_a, store_b = await Store.open(database), await Store.open(database)
    notices = EventNotices.for_store(store_b)
    a = EventLog(store_a, holder="a")
    b = EventLog(store_b, holder="b", notices=notices)
    await a.start()
    await b.start()
    if store_b.dialect == "postgresql":  # listens from the start; SQLite asks when watched
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


async def test_streams_woken_by_one_notice_share_one_read(replicas, monkeypatch) -> None:
    a, b, _ = replicas
    await a.open("s3", new=True)
    await a.append("s3", make_event(EventType.SESSION_STARTED))
    seen: list[list[dict[str, Any]]] = [[] for _ in range(20)]
    streams = [asyncio.create_task(_stream(b, "s3", into)) for into in seen]
    await _until(lambda: all(len(into) == 1 for into in seen))
    await asyncio.sleep(0.2)  # every stream waits for the next notice

    reads: list[int] = []
    events_after = b.store.events_after

    async def counted(session_id: str, after: int, *args: Any, **kwargs: Any) -> Any:
        reads.append(after)
        return await events_after(session_id, after, *args, **kwargs)

    monkeypatch.setattr(b.store, "events_after", counted)
    await a.append("s3", make_event(EventType.SESSION_COMPLETED, agent="kubernetes"))
    await asyncio.wait_for(asyncio.gather(*streams), 10)
    assert all(
        [e["type"] for e in into] == ["session_started", "session_completed"] for into in seen
    )
    assert len(reads) < 5, reads  # not one per stream


@pytest.mark.postgres
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_streams_follow_again_after_the_listening_connection_was_cut(
    replicas, database: str
) -> None:
    a, b, notices = replicas
    await a.open("s2", new=True)
    seen: list[dict[str, Any]] = []
    stream = asyncio.create_task(_stream(b, "s2", seen))
    await asyncio.sleep(0.2)

    admin = database.replace("postgresql+psycopg://", "postgresql://")
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


async def test_on_sqlite_the_file_is_asked_only_while_a_stream_waits(tmp_path) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/h.db")
    notices = EventNotices.for_store(store)
    notices.start()
    try:
        await asyncio.sleep(0.1)
        assert not notices.listening.is_set()  # nobody waits: no queries
        with notices.watch("s1") as watch:
            await asyncio.wait_for(notices.listening.wait(), 10)
            started = asyncio.get_running_loop().time()
            await watch.wait(10)  # woken at once: every watch reads again at the start
            assert asyncio.get_running_loop().time() - started < 5
        await _until(lambda: not notices.listening.is_set())  # the last one left: it stops
    finally:
        await notices.aclose()
        await store.close()
