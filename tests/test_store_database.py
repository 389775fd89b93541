"""How the store's operations run on a SQLite file (server/store/database.py): a write is
one transaction, a read one snapshot, reads run beside each other on reader connections
of their own, and a connection that could not be opened is opened again later."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from server.store import Store
from server.store.database import MAX_READERS, SqliteFile


@pytest.fixture
async def store(tmp_path: Path):
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await store.write(_create_table)
    try:
        yield store
    finally:
        await store.close()


def _create_table(conn: Connection) -> None:
    conn.execute(text("CREATE TABLE notes (n INTEGER)"))


def _count(conn: Connection) -> int:
    return int(conn.execute(text("SELECT count(*) FROM notes")).scalar_one())


def _insert(conn: Connection, n: int) -> None:
    conn.execute(text("INSERT INTO notes (n) VALUES (:n)"), {"n": n})


async def test_a_write_that_raises_leaves_nothing_behind(store: Store) -> None:
    def insert_then_fail(conn: Connection) -> None:
        _insert(conn, 1)
        _insert(conn, 2)
        raise ValueError("half-way")

    with pytest.raises(ValueError, match="half-way"):
        await store.write(insert_then_fail)
    assert await store.read(_count) == 0
    await store.write(_insert, 3)  # the connection is usable after a failed write
    assert await store.read(_count) == 1


async def test_a_read_sees_one_snapshot_while_a_write_commits(store: Store) -> None:
    """The statements of one read see the database as it was at its first statement, even
    when a write commits in between."""
    first_read, go_on = threading.Event(), threading.Event()

    def count_twice(conn: Connection) -> tuple[int, int]:
        before = _count(conn)
        first_read.set()
        go_on.wait(10)
        return before, _count(conn)

    reading = asyncio.ensure_future(store.read(count_twice))
    assert await asyncio.to_thread(first_read.wait, 10)
    await store.write(_insert, 1)  # commits while the read is open
    go_on.set()
    assert await reading == (0, 0)
    assert await store.read(_count) == 1


async def test_reads_run_beside_each_other_on_connections_of_their_own(store: Store) -> None:
    """A slow read holds up no other: reads that overlap get reader connections of their
    own (a barrier only the readers running together pass), up to MAX_READERS."""
    together = threading.Barrier(MAX_READERS, timeout=10)

    def meet(conn: Connection) -> int:
        together.wait()  # raises BrokenBarrierError if the reads ran one after another
        return _count(conn)

    reads = [store.read(meet) for _ in range(MAX_READERS)]
    assert await asyncio.gather(*reads) == [0] * MAX_READERS
    assert isinstance(store.db, SqliteFile)
    assert len(store.db._readers) == MAX_READERS
    # more at once share those connections
    assert await asyncio.gather(*(store.read(_count) for _ in range(10))) == [0] * 10
    assert len(store.db._readers) == MAX_READERS


async def test_a_connection_that_could_not_be_opened_is_opened_by_the_next_call(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "later"
    db = SqliteFile(str(folder / "db.sqlite"))
    try:
        with pytest.raises(Exception, match="unable to open"):
            await db.write(_create_table)
        with pytest.raises(Exception, match="unable to open"):
            await db.read(_count)
        folder.mkdir()
        await db.write(_create_table)
        await db.write(_insert, 1)
        assert await db.read(_count) == 1
    finally:
        await db.aclose()
