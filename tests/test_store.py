"""Tests for server.store on SQLite (a temporary file) and PostgreSQL (a throw-away database
on 127.0.0.1:5432, skipped when the server is not reachable)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from server.store import DuplicateSession, SessionNotFound, SessionRecord, Store, migrate
from server.store.database import SqliteFile
from server.store.migrate import include_name
from server.store.models import VERSION_TABLE, Base

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


async def _new(store: Store, n: int, **overrides: Any) -> SessionRecord:
    fields: dict[str, Any] = {
        "session_id": f"s{n:03d}",
        "alert_id": f"a{n:03d}",
        "alert_type": "NamespaceTerminating",
        "alert_data": {"n": n},
    }
    return await store.create_session(**(fields | overrides))


def _ids(records: list[SessionRecord]) -> list[str]:
    return [r.session_id for r in records]


# -- sessions ---------------------------------------------------------------------------------


async def test_create_get_update(store: Store) -> None:
    created = await store.create_session(
        session_id="s1",
        alert_id="alert-1",
        alert_type="NamespaceTerminating",
        alert_data={"namespace": "shop", "labels": {"team": "ünïcödé ✓"}},
        agent_type="kubernetes",
        model="gpt-x",
        session_metadata={"source": "test"},
    )
    assert created.status == "queued" and created.progress == 0 and created.current_step == ""
    assert created.started_at.tzinfo is UTC and created.started_at == created.updated_at
    assert created.completed_at is None

    got = await store.get_session("s1")
    assert got == created  # every column round-trips, datetimes to the microsecond
    assert await store.get_session("nope") is None

    result = {"root_cause": "finalizer", "confidence": 0.9, "steps": ["a", "b"]}
    await store.update_session(
        "s1",
        status="processing",
        progress=40,
        current_step="execute_tools",
        assigned_mcp_servers=["kubernetes-server"],
        iterations=2,
        tokens=1234,
    )
    mid = await store.get_session("s1")
    assert mid is not None
    assert (mid.status, mid.progress, mid.current_step) == ("processing", 40, "execute_tools")
    assert mid.assigned_mcp_servers == ["kubernetes-server"]
    assert (mid.iterations, mid.tokens) == (2, 1234)
    assert mid.updated_at > created.updated_at and mid.started_at == created.started_at
    assert mid.completed_at is None

    await store.update_session(
        "s1", status="completed", progress=150, result=result, result_markdown="# RCA\n"
    )
    done = await store.get_session("s1")
    assert done is not None
    assert done.status == "completed" and done.progress == 100  # clamped
    assert done.result == result and done.result_markdown == "# RCA\n"
    assert done.completed_at is not None and done.completed_at.tzinfo is UTC
    assert done.completed_at >= mid.updated_at

    await store.update_session("s1", result=None)
    cleared = await store.get_session("s1")
    assert cleared is not None and cleared.result is None

    with pytest.raises(ValueError, match="bogus"):
        await store.update_session("s1", bogus=1)
    with pytest.raises(ValueError, match="status"):
        await store.update_session("s1", status="exploded")
    with pytest.raises(SessionNotFound):
        await store.update_session("missing", progress=1)

    as_json = json.loads(json.dumps(done.to_dict()))
    assert as_json["session_id"] == "s1" and as_json["result"] == result
    assert datetime.fromisoformat(as_json["started_at"]) == done.started_at


async def test_update_sessions_writes_each_its_own_columns_and_names_the_unknown(
    store: Store,
) -> None:
    """Several sessions in one call (the index writer's batches): sessions changing the
    same columns are written together, yet each gets its own values; an unknown session
    is reported, not fatal, wherever it sits in the batch."""
    for n in range(1, 6):
        await _new(store, n)
    updates: dict[str, dict[str, Any]] = {
        "s001": {"status": "processing", "progress": 10},
        "nope-1": {"status": "processing", "progress": 99},
        "s002": {"status": "processing", "progress": 20},
        "s003": {"current_step": "select_tools", "iterations": 2},
        "s004": {"status": "completed", "progress": 100, "result": {"summary": "four"}},
        "nope-2": {"current_step": "x", "iterations": 9},
        "s005": {"status": "processing", "progress": 50},
    }
    assert sorted(await store.update_sessions(updates)) == ["nope-1", "nope-2"]

    got = {n: await store.get_session(f"s00{n}") for n in range(1, 6)}
    assert all(record is not None for record in got.values())
    assert [(r.status, r.progress) for r in got.values() if r] == [
        ("processing", 10),
        ("processing", 20),
        ("queued", 0),
        ("completed", 100),
        ("processing", 50),
    ]
    third, fourth = got[3], got[4]
    assert third and (third.current_step, third.iterations) == ("select_tools", 2)
    assert fourth and fourth.result == {"summary": "four"} and fourth.completed_at is not None
    assert (await store.stats())["total"] == 5


async def test_lookups_and_duplicates(store: Store) -> None:
    first = await _new(
        store, 1, idempotency_key="key-1", parent_session_id="s000", parent_checkpoint_id="ckpt-9"
    )
    await _new(store, 2)  # no idempotency key
    await _new(store, 3)  # several sessions may have none

    assert await store.get_session_by_alert_id("a001") == first
    assert await store.get_session_by_idempotency_key("key-1") == first
    assert await store.get_session_by_alert_id("zzz") is None
    assert await store.get_session_by_idempotency_key("zzz") is None
    assert (first.parent_session_id, first.parent_checkpoint_id) == ("s000", "ckpt-9")

    cases = [
        ({"session_id": "s001", "alert_id": "fresh-a"}, "session_id", "s001"),
        ({"session_id": "fresh-1", "alert_id": "a001"}, "alert_id", "a001"),
        (
            {"session_id": "fresh-2", "alert_id": "fresh-b", "idempotency_key": "key-1"},
            "idempotency_key",
            "key-1",
        ),
    ]
    for overrides, field, value in cases:
        with pytest.raises(DuplicateSession) as info:
            await _new(store, 9, **overrides)
        assert (info.value.field, info.value.value) == (field, value)
        assert info.value.existing == first
        assert value in str(info.value)
    assert (await store.stats())["total"] == 3


async def test_sessions_created_at_once_are_each_stored_and_a_duplicate_fails_alone(
    store: Store,
) -> None:
    await _new(store, 1, idempotency_key="taken")
    asked = [
        _new(store, n, **({"idempotency_key": "taken"} if n == 13 else {})) for n in range(10, 40)
    ]
    outcomes = await asyncio.gather(*asked, return_exceptions=True)

    failed = {
        n: o for n, o in zip(range(10, 40), outcomes, strict=True) if isinstance(o, Exception)
    }
    assert list(failed) == [13]
    assert isinstance(failed[13], DuplicateSession) and failed[13].field == "idempotency_key"
    stored = {r.session_id for r in (await store.list_sessions(page_size=100))[0]}
    assert stored == {"s001"} | {f"s{n:03d}" for n in range(10, 40) if n != 13}
    for n in (10, 39):  # with their columns (rows without a key were inserted with others)
        record = await store.get_session(f"s{n:03d}")
        assert record is not None and record.alert_data == {"n": n}


async def test_list_filters(store: Store) -> None:
    specs = [  # (n, status, agent_type, alert_type)
        (1, "queued", "kubernetes", "NamespaceTerminating"),
        (2, "processing", "kubernetes", "PodCrashLooping"),
        (3, "completed", "kubernetes", "NamespaceTerminating"),
        (4, "failed", None, "DiskFull"),
        (5, "completed", "storage", "DiskFull"),
        (6, "completed", "kubernetes", "PodCrashLooping"),
    ]
    for n, status, agent, alert_type in specs:
        await _new(store, n, status=status, agent_type=agent, alert_type=alert_type)
        await store.update_session(f"s{n:03d}", started_at=T0 + timedelta(minutes=n))

    async def ids(**filters: Any) -> list[str]:
        records, total = await store.list_sessions(**filters)
        assert total == len(records)
        return _ids(records)

    assert await ids() == ["s006", "s005", "s004", "s003", "s002", "s001"]
    assert await ids(status="completed") == ["s006", "s005", "s003"]
    assert await ids(status=["queued", "failed"]) == ["s004", "s001"]
    assert await ids(agent_type="kubernetes") == ["s006", "s003", "s002", "s001"]
    assert await ids(alert_type="DiskFull") == ["s005", "s004"]
    assert await ids(start_date=T0 + timedelta(minutes=5)) == ["s006", "s005"]
    assert await ids(end_date=T0 + timedelta(minutes=2)) == ["s002", "s001"]
    assert await ids(status="completed", agent_type="kubernetes") == ["s006", "s003"]
    assert await ids(
        status="completed", agent_type="kubernetes", alert_type="NamespaceTerminating"
    ) == ["s003"]
    assert await ids(
        agent_type="kubernetes",
        start_date=T0 + timedelta(minutes=2),
        end_date=T0 + timedelta(minutes=3),
    ) == ["s003", "s002"]
    assert await ids(status="failed", agent_type="kubernetes") == []
    assert await ids(agent_type="nobody") == []


async def test_list_date_range_bounds_and_time_zones(store: Store) -> None:
    for n in range(1, 4):
        await _new(store, n)
        await store.update_session(f"s{n:03d}", started_at=T0 + timedelta(hours=n))
    got = await store.get_session("s002")
    assert got is not None and got.started_at == T0 + timedelta(hours=2)

    exact = T0 + timedelta(hours=2)
    records, _ = await store.list_sessions(start_date=exact, end_date=exact)
    assert _ids(records) == ["s002"]  # both bounds are inclusive, to the microsecond
    records, _ = await store.list_sessions(start_date=exact + timedelta(microseconds=1))
    assert _ids(records) == ["s003"]

    cest = timezone(timedelta(hours=2))
    records, _ = await store.list_sessions(start_date=exact.astimezone(cest))
    assert _ids(records) == ["s003", "s002"]
    naive_utc = exact.replace(tzinfo=None)
    records, _ = await store.list_sessions(end_date=naive_utc)
    assert _ids(records) == ["s002", "s001"]


async def test_list_pagination_newest_first(store: Store) -> None:
    for n in range(1, 8):
        await _new(store, n)
    # Created one after the other: started_at increases, so newest first is s007 … s001.
    pages = []
    for page in (1, 2, 3, 4):
        records, total = await store.list_sessions(page=page, page_size=3)
        assert total == 7
        pages.append(_ids(records))
    assert pages == [["s007", "s006", "s005"], ["s004", "s003", "s002"], ["s001"], []]

    records, total = await store.list_sessions(status="queued", page=2, page_size=5)
    assert (_ids(records), total) == (["s002", "s001"], 7)

    # Equal start times: the session id breaks the tie.
    for sid in ("s003", "s005", "s004"):
        await store.update_session(sid, started_at=T0)
    records, _ = await store.list_sessions(start_date=T0, end_date=T0)
    assert _ids(records) == ["s003", "s004", "s005"]


async def test_unfinished_sessions_oldest_first(store: Store) -> None:
    statuses = ["processing", "completed", "queued", "failed", "queued"]
    for n, status in enumerate(statuses, start=1):
        await _new(store, n, status=status)
    await store.update_session("s005", started_at=T0)  # the oldest
    assert _ids(await store.unfinished_sessions()) == ["s005", "s001", "s003"]
    done = await store.get_session("s002")
    assert done is not None and done.completed_at is not None  # created as completed


async def test_stats(store: Store) -> None:
    assert await store.stats() == {
        "total": 0,
        "by_status": {"queued": 0, "processing": 0, "completed": 0, "failed": 0},
    }
    for n, status in enumerate(["queued", "queued", "processing", "failed"], start=1):
        await _new(store, n, status=status)
    assert await store.stats() == {
        "total": 4,
        "by_status": {"queued": 2, "processing": 1, "completed": 0, "failed": 1},
    }


# -- events -----------------------------------------------------------------------------------


class Kind(StrEnum):
    TOOL = "tool_call_started"


async def test_event_sequence_and_resume(store: Store) -> None:
    assert await store.last_seq("s1") == 0
    assert await store.events_after("s1") == []

    events: list[dict[str, Any]] = [
        {"type": "session_started", "ts": "t1", "data": {"thread_id": "s1"}},
        {"type": "agent_selected", "agent": "kubernetes", "data": {"note": "ünï ✓"}},
        {"type": "iteration_started", "iteration": 1, "data": {}},
    ]
    await store.insert_events({"s1": list(enumerate(events, start=1))})
    await store.insert_events({"s2": [(1, {"type": "session_started"})]})  # per session
    batch = [
        {"type": Kind.TOOL, "data": {"at": T0, "tags": {"x"}}},
        {"type": "session_completed", "data": {"nested": [1, {"a": None}]}},
    ]
    await store.insert_events({"s1": [(4, batch[0]), (5, batch[1])], "s3": []})
    assert await store.last_seq("s1") == 5
    assert await store.last_seq("s2") == 1

    everything = await store.events_after("s1")
    assert [seq for seq, _ in everything] == [1, 2, 3, 4, 5]
    assert [event for _, event in everything[:3]] == events
    # Values JSON has no type for are stored in their JSON form.
    assert everything[3][1] == {
        "type": "tool_call_started",
        "data": {"at": T0.isoformat(), "tags": ["x"]},
    }
    assert everything[4][1] == batch[1]

    assert [seq for seq, _ in await store.events_after("s1", after_seq=3)] == [4, 5]
    assert [seq for seq, _ in await store.events_after("s1", after_seq=1, limit=2)] == [2, 3]
    assert await store.events_after("s1", after_seq=5) == []
    assert await store.events_after("s2") == [(1, {"type": "session_started"})]
    assert await store.events_after("s3") == []


async def test_concurrent_inserts_of_one_session_keep_each_seq_once(
    store: Store, db_url: str
) -> None:
    """Batches of one session inserted at once, some retried, through two engines (as two
    processes would): every seq is stored once, with the event first written for it."""
    other = await Store.open(db_url)
    try:
        writes = [
            (store if n % 2 else other).insert_events(
                {"c": [(seq, {"type": "x", "seq": seq, "n": n}) for seq in range(1, n + 2)]}
            )
            for n in range(20)
        ]
        results = await asyncio.gather(*writes, return_exceptions=True)
    finally:
        await other.close()
    stored = await store.events_after("c")
    assert [seq for seq, _ in stored] == list(range(1, len(stored) + 1))
    assert all(event["seq"] == seq for seq, event in stored)
    # a batch that lost its race to the other engine fails whole (and is retried by its
    # caller), it never half-writes: the longest batch that succeeded is all there
    done = [n for n, r in enumerate(results) if not isinstance(r, BaseException)]
    assert done and len(stored) >= max(done) + 1


# -- housekeeping and durability --------------------------------------------------------------


async def test_prune(store: Store) -> None:
    old = T0 - timedelta(days=30)
    cases = {  # session id: (status, started_at)
        "old-done": ("completed", old),
        "old-failed": ("failed", old),
        "old-running": ("processing", old),
        "old-queued": ("queued", old),
        "new-done": ("completed", T0),
    }
    for n, (sid, (status, started)) in enumerate(cases.items()):
        await _new(store, n, session_id=sid, status=status)
        await store.update_session(sid, started_at=started)
        await store.insert_events({sid: [(1, {"type": "a"}), (2, {"type": "b"})]})

    pruned = await store.prune(T0 - timedelta(days=1))
    assert sorted(pruned) == ["old-done", "old-failed"]
    for sid in cases:
        gone = sid in pruned
        assert (await store.get_session(sid) is None) == gone
        assert await store.last_seq(sid) == (0 if gone else 2)
    assert await store.prune(T0 - timedelta(days=1)) == []
    assert sorted(await store.prune(T0 + timedelta(seconds=1))) == ["new-done"]


async def test_data_survives_close_and_reopen(db_url: str) -> None:
    first = await Store.open(db_url)
    created = await first.create_session(
        session_id="keep", alert_id="a", alert_type="T", alert_data={"k": [1, 2]}
    )
    await first.update_session("keep", status="completed", result={"ok": True})
    await first.insert_events({"keep": [(1, {"type": "a"}), (2, {"type": "b"})]})
    await first.close()

    for last in (2, 3):  # migrations run again on an up-to-date database: a no-op
        again = await Store.open(db_url)
        try:
            got = await again.get_session("keep")
            assert got is not None and got.started_at == created.started_at
            assert got.result == {"ok": True} and got.alert_data == {"k": [1, 2]}
            assert [seq for seq, _ in await again.events_after("keep")] == list(range(1, last + 1))
            await again.insert_events({"keep": [(last + 1, {"type": "c"})]})
            assert await again.last_seq("keep") == last + 1
            assert await migrate.recorded_revision(again.engine) == migrate.head_revision()
        finally:
            await again.close()


async def test_upgrade_from_first_revision_keeps_rows(db_url: str) -> None:
    old = Store(db_url)  # engine only: schema brought to revision 0001 by hand
    try:
        await migrate.upgrade(old.engine, "0001")
        assert await migrate.recorded_revision(old.engine) == "0001"
        await old.create_session(session_id="v1", alert_id="a", alert_type="T", alert_data={})
        await old.insert_events({"v1": [(1, {"type": "x"})]})
    finally:
        await old.close()

    new = await Store.open(db_url)  # upgrades to head
    try:
        assert await migrate.recorded_revision(new.engine) == migrate.head_revision()
        assert (got := await new.get_session("v1")) is not None and got.alert_id == "a"
        assert await new.events_after("v1") == [(1, {"type": "x"})]
    finally:
        await new.close()


def schema_diff(sync_conn: Any) -> list[Any]:
    """What Alembic's autogenerate finds between the models and the database's `sre_` tables."""
    context = MigrationContext.configure(
        sync_conn,
        opts={"version_table": VERSION_TABLE, "include_name": include_name, "compare_type": True},
    )
    return list(compare_metadata(context, Base.metadata))


@pytest.mark.parametrize("created", ["by the migrations", "from the models"])
async def test_the_schema_matches_the_models_and_other_tables_are_left_alone(
    db_url: str, created: str
) -> None:
    bare = Store(db_url)
    try:
        async with bare.engine.begin() as conn:  # stands in for LangGraph's checkpoint table
            await conn.execute(text("DROP TABLE IF EXISTS checkpoints_probe"))
            await conn.execute(text("CREATE TABLE checkpoints_probe (id INTEGER PRIMARY KEY)"))
            await conn.execute(text("INSERT INTO checkpoints_probe VALUES (7)"))
        if created == "by the migrations":  # every script runs: 0001, then up to head
            await migrate.upgrade(bare.engine, "0001")
    finally:
        await bare.close()

    store = await Store.open(db_url)  # a new database: created from the models, stamped
    try:
        assert await migrate.recorded_revision(store.engine) == migrate.HEAD
        async with store.engine.connect() as conn:
            assert await conn.run_sync(schema_diff) == []
            assert (await conn.execute(text("SELECT id FROM checkpoints_probe"))).scalar() == 7
        async with store.engine.begin() as conn:
            await conn.execute(text("DROP TABLE checkpoints_probe"))
    finally:
        await store.close()


# -- connection handling ----------------------------------------------------------------------


async def test_ping_fails_when_unreachable() -> None:
    url = "postgresql+psycopg://postgres:hunter2@127.0.0.1:1/nowhere"
    store = Store(url)  # builds the engine; connects on use
    try:
        assert "hunter2" not in store.url and "***" in store.url
        with pytest.raises(OperationalError):
            await store.ping()
    finally:
        await store.close()
    with pytest.raises(OperationalError):
        await Store.open(url)


async def test_ping_ok(store: Store) -> None:
    await store.ping()
    assert "***" not in store.url and store.dialect in ("sqlite", "postgresql")


async def test_sqlite_file_settings(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "folder" / "sre-agent.db"
    store = await Store.open(f"sqlite:///{path}")  # the driver defaults to aiosqlite
    try:
        assert path.parent.is_dir() and store.url.startswith("sqlite+aiosqlite://")
        async with store.engine.connect() as conn:
            pragmas: list[Any] = [
                (await conn.execute(text(f"PRAGMA {name}"))).scalar()
                for name in ("journal_mode", "synchronous", "busy_timeout")
            ]
        assert pragmas[0] == "wal" and pragmas[1] == 1 and pragmas[2] >= 1000  # 1: NORMAL
    finally:
        await store.close()
    with sqlite3.connect(path) as raw:  # the file is a plain SQLite database
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"sre_sessions", "sre_events", VERSION_TABLE} <= tables


async def test_sqlite_stores_events_as_sqlalchemy_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a SQLite file, events are stored on a connection of the store's own, through
    SQLAlchemy's synchronous SQLite driver: the rows are those the asyncio engine (the
    migrations', and any tool's) writes, byte for byte."""
    from server.store import events
    from server.store import store as store_module

    monkeypatch.setattr(store_module, "utcnow", lambda: T0)
    path = tmp_path / "events.db"
    store = await Store.open(f"sqlite+aiosqlite:///{path}")
    try:
        event = {"type": "tool_call_finished", "data": {"size": 3, "text": "é ✓", "none": None}}
        for n in (1, 2):
            await _new(store, n)
        async with store.engine.begin() as conn:
            await conn.run_sync(events.insert_new, {"s001": [(1, event)]}, T0)
        await store.insert_events({"s002": [(1, event)]})
        assert isinstance(store.db, SqliteFile), "the events went the SQLite file's own way"
    finally:
        await store.close()
    with sqlite3.connect(path) as raw:
        rows = raw.execute(
            "SELECT session_id, seq, type, data, typeof(data), created_at, typeof(created_at) "
            "FROM sre_events ORDER BY session_id"
        ).fetchall()
    assert [row[1:] for row in rows[:1]] == [row[1:] for row in rows[1:]]
    assert json.loads(rows[1][3]) == event


async def test_a_write_that_cannot_take_the_sqlite_lock_raises_sqlalchemys_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BEGIN IMMEDIATE runs on the connection's thread directly; when another process holds
    the write lock past the busy timeout, the error is SQLAlchemy's, as for any statement,
    for the session index and the event log alike."""
    from server.store import engine

    monkeypatch.setattr(engine, "SQLITE_BUSY_TIMEOUT_MS", 50)
    path = tmp_path / "locked.db"
    store = await Store.open(f"sqlite+aiosqlite:///{path}")
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        await _new(store, 3)
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError, match="database is locked"):
            await _new(store, 1)
        with pytest.raises(OperationalError, match="database is locked"):
            await store.insert_events({"s003": [(1, {"type": "x"})]})
        holder.execute("ROLLBACK")
        await _new(store, 2)  # the lock is free again: the store writes
        await store.insert_events({"s003": [(1, {"type": "x"})]})
        assert await store.get_session("s001") is None
        assert await store.get_session("s002") is not None
        assert [seq for seq, _ in await store.events_after("s003")] == [1]
    finally:
        holder.close()
        await store.close()


async def test_a_failed_sqlite_event_write_raises_sqlalchemys_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.db"
    store = await Store.open(f"sqlite+aiosqlite:///{path}")
    try:
        await _new(store, 1)
        with sqlite3.connect(path) as raw:
            raw.execute("ALTER TABLE sre_events RENAME TO sre_events_gone")
        with pytest.raises(OperationalError, match="no such table"):
            await store.insert_events({"s001": [(1, {"type": "x"})]})
    finally:
        await store.close()


async def test_closing_the_store_closes_its_sqlite_connections(tmp_path: Path) -> None:
    """The store's SQLite connections (its writer, its readers) run on threads of their
    own, which would keep the process from exiting: closing the store ends them, and a
    closed store does not open them again."""
    import gc
    import threading
    import warnings

    before = set(threading.enumerate())  # threads of earlier tests may end meanwhile
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'closing.db'}")
    await _new(store, 1)
    await store.insert_events({"s001": [(1, {"type": "x"})]})
    assert await store.last_seq("s001") == 1
    its_own = set(threading.enumerate()) - before
    assert len(its_own) >= 2  # a writer and a reader
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await store.close()
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], "closed, not lost"
    for _ in range(100):  # a closed connection's thread ends after its last call
        if not any(thread.is_alive() for thread in its_own):
            break
        await asyncio.sleep(0.01)
    assert not [thread for thread in its_own if thread.is_alive()]
    with pytest.raises(RuntimeError, match="closed"):
        await store.insert_events({"s001": [(2, {"type": "x"})]})
    with pytest.raises(RuntimeError, match="closed"):
        await store.last_seq("s001")
    assert not set(threading.enumerate()) - before - its_own, "no thread opened again"
