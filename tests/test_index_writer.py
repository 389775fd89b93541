"""Index updates are coalesced: many updates of many sessions reach the database in one
transaction after a short window; `flush` writes at once; a failing database is reported
and nothing else is lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from server.index_writer import IndexWriter
from server.store import Store
from server.store.database import SqliteFile


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/index.db")
    for n in range(3):
        await s.create_session(
            session_id=f"s{n}", alert_id=f"a{n}", alert_type="NamespaceTerminating", alert_data={}
        )
    try:
        yield s
    finally:
        await s.close()


class Health:
    def __init__(self) -> None:
        self.errors: list[Exception] = []
        self.ok = 0

    def error(self, exc: Exception) -> None:
        self.errors.append(exc)

    def good(self) -> None:
        self.ok += 1


def counting(store: Store) -> list[dict[str, Any]]:
    batches: list[dict[str, Any]] = []
    write = store.update_sessions

    async def spy(updates: Any, *, holder: str | None = None) -> list[str]:
        batches.append({k: dict(v) for k, v in updates.items()})
        return await write(updates, holder=holder)

    store.update_sessions = spy  # type: ignore[method-assign]
    return batches


async def test_updates_in_a_window_go_in_one_transaction(store: Store):
    batches, health = counting(store), Health()
    writer = IndexWriter(store, on_error=health.error, on_ok=health.good, window=0.05)
    writer.update("s0", {"status": "processing"})
    writer.update("s1", {"status": "processing"})
    writer.update("s0", {"iterations": 1})
    writer.update("s0", {"iterations": 2, "agent_type": "kubernetes"})
    assert (await store.get_session("s0")).status == "queued"  # not yet written
    await asyncio.sleep(0.2)

    assert batches == [
        {
            "s0": {"status": "processing", "iterations": 2, "agent_type": "kubernetes"},
            "s1": {"status": "processing"},
        }
    ]
    s0 = await store.get_session("s0")
    assert (s0.status, s0.iterations, s0.agent_type) == ("processing", 2, "kubernetes")
    assert (await store.get_session("s1")).status == "processing"
    assert health.ok == 1 and not health.errors


async def test_flush_writes_at_once_and_close_writes_what_is_left(store: Store):
    health = Health()
    writer = IndexWriter(store, on_error=health.error, on_ok=health.good, window=60)
    writer.update("s0", {"status": "completed", "progress": 100})
    await writer.flush()
    assert (await store.get_session("s0")).status == "completed"
    writer.update("s1", {"status": "failed", "error_message": "boom"})
    await writer.aclose()
    s1 = await store.get_session("s1")
    assert (s1.status, s1.error_message) == ("failed", "boom")
    assert s1.completed_at is not None


async def test_a_failing_database_is_reported(store: Store):
    health = Health()
    writer = IndexWriter(store, on_error=health.error, on_ok=health.good, window=0.01)
    await store.close()
    store.db = SqliteFile("/nonexistent-dir/x.db")
    writer.update("s0", {"status": "processing"})
    await writer.flush()
    assert len(health.errors) == 1 and health.ok == 0


async def test_updates_the_database_refused_are_written_once_it_is_back(store: Store):
    """A session that ended while the database was down is recorded as ended when it is
    back; an update made during the outage wins over the older one that was refused."""
    health = Health()
    writer = IndexWriter(store, on_error=health.error, on_ok=health.good, window=0.01)
    write = store.update_sessions
    down = True

    async def flaky(updates: Any, *, holder: str | None = None) -> list[str]:
        if down:
            raise ConnectionError("database is down")
        return await write(updates, holder=holder)

    store.update_sessions = flaky  # type: ignore[method-assign]
    writer.update("s0", {"status": "processing", "iterations": 1})
    writer.update("s1", {"status": "completed", "progress": 100})
    await writer.flush()  # a session's end, written at once: refused
    writer.update("s0", {"iterations": 2})
    await asyncio.sleep(0.7)  # the first retries are refused too
    assert health.errors and health.ok == 0
    assert (await store.get_session("s1")).status == "queued"

    down = False
    for _ in range(200):  # retried within 5 s of the last refusal
        if health.ok:
            break
        await asyncio.sleep(0.05)
    s0, s1 = await store.get_session("s0"), await store.get_session("s1")
    assert (s0.status, s0.iterations) == ("processing", 2)
    assert (s1.status, s1.progress) == ("completed", 100) and s1.completed_at is not None
    await writer.aclose()
